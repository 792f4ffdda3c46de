#!/usr/bin/env python3
"""GPU stand-in for TensorRT-LLM's examples/auto_deploy/build_and_run_ad.py.

Same flags and log lines as adbot's CPU stand-in (internal/standin), but the
text is really generated on the GPU: a small transformers causal LM is built
from the config.json named by ADBOT_STANDIN_HF_CONFIG (a file, or a folder
holding config.json) with random weights, and generates
ADBOT_STANDIN_NEW_TOKENS (16) tokens per prompt, sampled with a fixed seed. There is no tokenizer: prompt
bytes become token ids (modulo the vocabulary) and generated ids are printed
as printable ASCII. The output is therefore gibberish by design; what it
proves is the GPU path (device selection, CUDA_VISIBLE_DEVICES, timing).
Needs torch and transformers; no network.
"""

import json
import os
import sys
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM

DEFAULT_PROMPTS = [
    "How big is the universe? ",
    "In simple words and a single sentence, explain the concept of gravity: ",
    "How to fix slicing in golf? ",
    "Where is the capital of Iceland? ",
    "What are the three laws of thermodynamics? ",
    "Summarize the plot of Romeo and Juliet in two sentences: ",
    "Write a Python function that checks if a number is prime.",
    "Explain the difference between a compiler and an interpreter: ",
    "What causes the northern lights? ",
    "What are the health benefits of drinking green tea?",
]


def log(msg):
    print("%s [TRT-LLM AUTO-DEPLOY] [I] %s" % (time.strftime("[%m/%d/%Y-%H:%M:%S]"), msg), flush=True)


def parse_args(argv):
    opts, extra, i = {}, [], 0
    while i < len(argv):
        a = argv[i]
        if "=" in a:
            key, val = a.split("=", 1)
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            key, val = a, argv[i + 1]
            i += 1
        else:
            key, val = a, "true"
        if key == "--args.yaml-extra":
            extra.append(val)
        else:
            opts[key] = val
        i += 1
    return opts, extra


def load_config(path, layers):
    if os.path.isdir(path):
        path = os.path.join(path, "config.json")
    with open(path) as f:
        d = json.load(f)
    d.pop("architectures", None)
    d.pop("auto_map", None)
    if layers is not None:
        d["num_hidden_layers"] = layers
    return AutoConfig.for_model(d.pop("model_type"), **d)


def main(argv):
    opts, extra = parse_args(argv)
    model_id = opts.get("--model")
    if not model_id:
        sys.stderr.write("build_and_run_ad.py: --model is required\n")
        return 2
    cfg_path = os.environ.get("ADBOT_STANDIN_HF_CONFIG")
    if not cfg_path:
        sys.stderr.write("build_and_run_ad.py (GPU stand-in): set ADBOT_STANDIN_HF_CONFIG to a config.json\n")
        return 2
    layers = opts.get("--args.model-kwargs.num-hidden-layers")
    batch = int(opts.get("--prompt.batch-size", "10"))
    new_tokens = int(os.environ.get("ADBOT_STANDIN_NEW_TOKENS", "16"))

    print("[TensorRT-LLM] TensorRT LLM version: 0.0.0 (adbot GPU stand-in)", flush=True)
    log("CUDA_VISIBLE_DEVICES=%s" % os.environ.get("CUDA_VISIBLE_DEVICES", "(unset)"))
    for path in extra:
        if not os.path.isfile(path):
            raise FileNotFoundError("No such file or directory: %r (--args.yaml-extra)" % path)
        log("Loading extra config %s" % path)
    torch.manual_seed(0)
    config = load_config(cfg_path, int(layers) if layers is not None else None)
    model = AutoModelForCausalLM.from_config(config).to("cuda").eval()
    log("[RANK 0] built %s for %s on %s (%d layers, random weights)" % (
        type(model).__name__, model_id, torch.cuda.get_device_name(0), config.num_hidden_layers))
    vocab = config.vocab_size
    prompts = [DEFAULT_PROMPTS[i % len(DEFAULT_PROMPTS)] for i in range(batch)]
    outputs = []
    start = time.time()
    for i, prompt in enumerate(prompts):
        ids = torch.tensor([[b % vocab for b in prompt.encode()]], device="cuda")
        with torch.no_grad():
            # Sampled, not greedy: random weights decode greedily to one
            # token over and over, which the end-to-end gate rightly refuses.
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                                 min_new_tokens=new_tokens, do_sample=True, top_k=50, temperature=1.0, pad_token_id=0)
        text = "".join(chr(32 + int(t) % 95) for t in out[0, ids.shape[1]:])
        outputs.append(text)
        log("[RANK 0] [PROMPT %d] %s: %s" % (i, prompt, text))
    torch.cuda.synchronize()
    log("[RANK 0] generated %d x %d tokens in %.3fs" % (batch, new_tokens, time.time() - start))
    if opts.get("--benchmark.store-results", "false").lower() == "true":
        path = opts.get("--benchmark.results-path", "./benchmark_results.json")
        with open(path, "w") as f:
            json.dump({"config": {"model": model_id, "args": {"yaml_extra": extra}, "prompt": {"batch_size": batch}},
                       "prompts_and_outputs": [[p, o] for p, o in zip(prompts, outputs)]}, f, indent=2)
        log("Results written to %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
