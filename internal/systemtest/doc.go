// Package systemtest holds adbot's whole-system tests: the real server
// (webhook intake, embedded JetStream, command workers, token broker) and a
// real runner, in one process on loopback, against a fake GitHub that checks
// every request against GitHub's OpenAPI description, a fake HuggingFace Hub
// serving recorded answers, mock NVML GPUs and a local bare repository
// standing for the TensorRT-LLM remote. Deliveries are signed HTTP requests
// built from real webhook payloads.
//
// The tests hold adbot to what maintainers rely on: the bot answers at once,
// shows what it does in one status comment, runs nothing a stranger asked
// for, loses no request and posts nothing twice. The package has no code of
// its own; its tests are in systemtest_test.go.
package systemtest
