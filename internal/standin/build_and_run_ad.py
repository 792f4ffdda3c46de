#!/usr/bin/env python3
"""Stand-in for TensorRT-LLM's examples/auto_deploy/build_and_run_ad.py.

adbot's tests and `adbot dev --demo` run this where there is no GPU and no
TensorRT-LLM. It takes the real flags, prints a log in AutoDeploy's format
with the real "[PROMPT i] {prompt}: {output}" lines, writes the results JSON
when asked (--benchmark.store-results true) and exits 0. The answers are
canned text, not generated. Stdlib only.

Knobs (environment):
  ADBOT_STANDIN_E2E    ok (default) | crash | crash-once | degenerate | slow=<seconds>
  ADBOT_STANDIN_STATE  folder for state across runs (default ~/.cache/adbot-standin)
"""

import hashlib
import json
import os
import re
import sys
import time

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

ANSWERS = [
    "The observable universe is about 93 billion light-years across; what lies beyond it cannot be seen.",
    "Gravity is the pull that every mass exerts on every other mass, which is why things fall and planets orbit.",
    "A slice usually comes from an open clubface at impact, so strengthen your grip and swing more from the inside.",
    "Reykjavik is the capital of Iceland, on the southwest coast of the island.",
    "1. Energy is neither created nor destroyed.\n"
    "2. The entropy of an isolated system never decreases.\n"
    "3. Entropy approaches a constant minimum as temperature approaches absolute zero.",
    "Two young lovers from feuding families in Verona marry in secret. A chain of misunderstandings ends with both of them dead, which reconciles their families.",
    "Here is a simple version:\n"
    "\n"
    "```python\n"
    "def is_prime(n: int) -> bool:\n"
    "    if n < 2:\n"
    "        return False\n"
    "    for i in range(2, int(n ** 0.5) + 1):\n"
    "        if n % i == 0:\n"
    "            return False\n"
    "    return True\n"
    "```",
    "A compiler translates the whole program into machine code before it runs, while an interpreter executes it statement by statement.",
    "Charged particles from the solar wind strike oxygen and nitrogen high in the atmosphere, which glow green, red and blue.",
    "Green tea holds antioxidants called catechins that may support heart health, brain function and metabolism.",
]


def stamp():
    return time.strftime("[%m/%d/%Y-%H:%M:%S]")


def log(msg, level="I"):
    print("%s [TRT-LLM AUTO-DEPLOY] [%s] %s" % (stamp(), level, msg), flush=True)


def parse_args(argv):
    """Returns a dict of flag -> value (lists for repeated --args.yaml-extra)."""
    opts = {"--args.yaml-extra": []}
    i = 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("--"):
            sys.stderr.write("build_and_run_ad.py: unexpected argument %r\n" % a)
            sys.exit(2)
        if "=" in a:
            key, val = a.split("=", 1)
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            key, val = a, argv[i + 1]
            i += 1
        else:
            key, val = a, "true"
        key = key.replace("_", "-") if not key.startswith("--args.") else key
        if key in ("--args.yaml-extra", "--args.yaml_extra"):
            opts["--args.yaml-extra"].append(val)
        else:
            opts[key] = val
        i += 1
    return opts


def state_count(name, key):
    """Returns how many times (name, key) was seen before, and counts this time."""
    root = os.environ.get("ADBOT_STANDIN_STATE") or os.path.join(os.path.expanduser("~"), ".cache", "adbot-standin")
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, "e2e-" + hashlib.sha256(key.encode()).hexdigest()[:24] + ".json")
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        data = {}
    n = data.get(name, 0)
    data[name] = n + 1
    with open(path + ".tmp", "w") as f:
        json.dump(data, f)
    os.replace(path + ".tmp", path)
    return n


def layers_from(opts, yaml_files):
    for k in ("--args.model-kwargs.num-hidden-layers", "--args.model_kwargs.num_hidden_layers"):
        if k in opts:
            return int(opts[k])
    for path in yaml_files:
        with open(path) as f:
            m = re.search(r"^\s*num_hidden_layers:\s*(\d+)", f.read(), re.M)
        if m:
            return int(m.group(1))
    return None


def build_engine(model, mode):
    """Pretends to export and compile; crashes here when told to."""
    log("[RANK 0] [stage=export, transform=export_to_gm] exporting %s" % model)
    if mode == "crash":
        compile_graph(model)
    log("[RANK 0] [stage=compile, transform=compile_model] elapsed time: total=3.141s")


def compile_graph(model):
    raise RuntimeError("CUDA error: an illegal memory access was encountered while compiling %s "
                       "(adbot stand-in: ADBOT_STANDIN_E2E asked for a crash)" % model)


def main(argv):
    opts = parse_args(argv)
    model = opts.get("--model")
    if not model:
        sys.stderr.write("build_and_run_ad.py: --model is required\n")
        return 2
    mode = os.environ.get("ADBOT_STANDIN_E2E", "ok") or "ok"
    slow = 0.0
    if mode.startswith("slow="):
        slow, mode = float(mode[len("slow="):]), "ok"
    if mode not in ("ok", "crash", "crash-once", "degenerate"):
        sys.stderr.write("build_and_run_ad.py (stand-in): ADBOT_STANDIN_E2E=%r: want ok, crash, crash-once, degenerate or slow=<s>\n" % mode)
        return 2
    if mode == "crash-once":
        mode = "crash" if state_count("runs", os.path.realpath(os.getcwd()) + "\0" + model) == 0 else "ok"
    batch = int(opts.get("--prompt.batch-size", "10"))
    yaml_files = opts["--args.yaml-extra"]

    print("[TensorRT-LLM] TensorRT LLM version: 0.0.0 (adbot stand-in)", flush=True)
    print("%s [TRT-LLM] [I] Using LLM with AutoDeploy backend" % stamp(), flush=True)
    log("CUDA_VISIBLE_DEVICES=%s" % os.environ.get("CUDA_VISIBLE_DEVICES", "(unset)"))
    for path in yaml_files:
        if not os.path.isfile(path):
            raise FileNotFoundError("[Errno 2] No such file or directory: %r (--args.yaml-extra)" % path)
        log("Loading extra config %s" % path)
    if opts.get("--use-registry", "false").lower() in ("true", "1", "yes"):
        log("Using the model registry entry for %s" % model)
    layers = layers_from(opts, yaml_files)
    if layers is not None:
        log("model_kwargs: num_hidden_layers=%d" % layers)
    build_engine(model, mode)
    print("[TensorRT-LLM][INFO] Max KV cache blocks per sequence: 256", flush=True)
    if slow > 0:
        time.sleep(slow)
    prompts = [DEFAULT_PROMPTS[i % len(DEFAULT_PROMPTS)] for i in range(batch)]
    outputs = []
    for i, p in enumerate(prompts):
        out = ANSWERS[i % len(ANSWERS)]
        if mode == "degenerate":
            out = " ".join(["the"] * 24)
        outputs.append(out)
        log("[RANK 0] [PROMPT %d] %s: %s" % (i, p, out))
    if opts.get("--benchmark.store-results", "false").lower() in ("true", "1", "yes"):
        path = opts.get("--benchmark.results-path", "./benchmark_results.json")
        result = {
            "config": {"model": model, "args": {"yaml_extra": yaml_files, "model_kwargs": (
                {"num_hidden_layers": layers} if layers is not None else {})}, "prompt": {"batch_size": batch}},
            "prompts_and_outputs": [[p, o] for p, o in zip(prompts, outputs)],
        }
        with open(path, "w") as f:
            json.dump(result, f, indent=2)
        log("Results written to %s" % path)
    log("[RANK 0] Destroying LLM")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
