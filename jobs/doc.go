// Package jobs carries out the commands that webhook handlers publish: it
// authorizes the actor, reacts, asks the HuggingFace Hub, creates and steers
// jobs, writes their status comment and publishes their cycles.
package jobs
