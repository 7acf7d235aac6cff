"""What follows training, done inside Axolotl's own process while the trained model is still in
memory: the benchmark of base and tuned, and the merged model of a LoRA run.

Done in a process of its own, the same work imported torch, transformers and peft again and
loaded the base model twice more (once to score it, once for `axolotl merge-lora`): about
eight seconds per run on the test machine for the 135M model, minutes for a large model on a
GPU node. The forgeline_events plugin calls `finish` from its `post_train_unload` hook, once
Axolotl has saved the adapter and the tokenizer; node_bootstrap.py asks for it with a JSON file
named by FORGELINE_POST_TRAINING:

    {"evaluation": {"benchmark": "gsm8k", "questions": [...], "max_new_tokens": 256} | null,
     "merge": true}

Where the model in memory is not the one to merge from (a quantized base, weights sharded over
several processes), nothing is done here and node_bootstrap.py falls back to loading the
model again (`evaluate`) and to `axolotl merge-lora`. Like the plugin, this file runs in the
engine's environment and imports nothing of Forgeline's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

SPEC_ENV = "FORGELINE_POST_TRAINING"
MERGED_FOLDER = "merged"  # under the output folder, where `axolotl merge-lora` writes it too

Emit = Callable[[dict[str, Any]], None]

# --- GSM8K ----------------------------------------------------------------------------------

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def final_number(text: str) -> str | None:
    """GSM8K's answer: the number after '####', else the last number in the text."""
    tail = text.split("####", 1)[1] if "####" in text else text
    numbers = _NUMBER.findall(tail)
    if not numbers:
        return None
    value = (numbers[0] if "####" in text else numbers[-1]).replace(",", "")
    return str(value[:-2] if value.endswith(".0") else value)


def gsm8k_accuracy(
    model: Any, tokenizer: Any, questions: list[dict[str, str]], max_new_tokens: int
) -> tuple[float, list[dict[str, Any]]]:
    """Greedy answers to the questions; the share whose final number is right, and the
    first three answers as examples."""
    import torch

    correct, examples = 0, list[dict[str, Any]]()
    for item in questions:
        messages = [{"role": "user", "content": item["question"]}]
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        inputs = inputs.to(model.device)
        with torch.no_grad():
            output = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
        answer = tokenizer.decode(
            output[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True
        )
        expected, got = final_number(item["answer"]), final_number(answer)
        ok = expected is not None and expected == got
        correct += ok
        if len(examples) < 3:
            examples.append(
                {
                    "question": item["question"],
                    "expected": expected,
                    "answer": answer[:600],
                    "correct": ok,
                }
            )
    return (correct / len(questions) if questions else 0.0), examples


def evaluation_result(
    spec: dict[str, Any], base: tuple[float, list[Any]], tuned: tuple[float, list[Any]]
) -> dict[str, Any]:
    """The `evaluation` event, as the platform stores it."""
    return {
        "benchmark": spec["benchmark"],
        "sample": len(spec["questions"]),
        "base_exact_match": base[0],
        "tuned_exact_match": tuned[0],
        "base_examples": base[1],
        "tuned_examples": tuned[1],
    }


# --- in the training process ----------------------------------------------------------------


def requested() -> dict[str, Any] | None:
    path = os.environ.get(SPEC_ENV)
    return json.loads(Path(path).read_text()) if path else None


def model_in_memory_will_do(cfg: Any, model: Any) -> bool:
    """Whether the trained model in memory is the whole model at its own precision: not a
    quantized base (merging needs the full-precision weights) and not one shard of several
    processes (DeepSpeed, FSDP)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 or cfg.get("deepspeed") or cfg.get("fsdp"):
        return False
    if cfg.get("load_in_4bit") or cfg.get("load_in_8bit"):
        return False
    return not getattr(model, "is_quantized", False)


def score(tuned: Any, base_model: str, evaluation: dict[str, Any]) -> dict[str, Any]:
    """The benchmark of the base and of the tuned model, as the `evaluation` event. For an
    adapter the base is the tuned model with its adapter switched off; a full fine-tune
    overwrote the base's weights, so they are read again."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tuned.eval()  # LoRA dropout off: greedy answers must not depend on chance
    torch.manual_seed(0)
    # The base model's own tokenizer and chat template, as the benchmark always used.
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    questions, limit = evaluation["questions"], evaluation["max_new_tokens"]
    if isinstance(tuned, PeftModel):
        with tuned.disable_adapter():
            base = gsm8k_accuracy(tuned, tokenizer, questions, limit)
    else:
        original = AutoModelForCausalLM.from_pretrained(base_model, dtype=tuned.dtype)
        original.eval()  # type: ignore[no-untyped-call]
        base = gsm8k_accuracy(original, tokenizer, questions, limit)
        del original
    return evaluation_result(evaluation, base, gsm8k_accuracy(tuned, tokenizer, questions, limit))


def finish(cfg: Any, model: Any, spec: dict[str, Any], emit: Emit) -> None:
    """Score base and tuned, then merge the adapter into the base and save the result."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    output = Path(cfg["output_dir"])
    evaluation = spec.get("evaluation")
    if evaluation:
        emit({"type": "state", "state": "evaluating"})
        emit({"type": "evaluation", **score(model, cfg["base_model"], evaluation)})
    if spec.get("merge") and isinstance(model, PeftModel):
        merged_dir = output / MERGED_FOLDER
        partial = output / (MERGED_FOLDER + ".part")
        merged = model.merge_and_unload()
        merged.save_pretrained(partial, safe_serialization=True)
        # The tokenizer (and chat template) Axolotl saved beside the adapter, as merge-lora
        # copies it.
        AutoTokenizer.from_pretrained(output).save_pretrained(partial)
        shutil.rmtree(merged_dir, ignore_errors=True)
        partial.replace(merged_dir)  # whole or absent: the bootstrap merges again if absent
