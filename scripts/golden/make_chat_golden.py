#!/usr/bin/env python3
"""Golden outputs for formiga's chat templates (src/tokenizer/chat_template.h).

Renders every (template x conversation x add_generation_prompt) case listed in
tests/data/chat/conversations.json with Hugging Face transformers' own
chat-template renderer (transformers.utils.chat_template_utils.
render_jinja_template: the sandboxed Jinja environment apply_chat_template
uses), and writes tests/data/chat/expected.json: the exact prompt text, or the
error the template raised (e.g. Mistral's role-alternation check).

Special tokens are passed as the tokenizer would (only the tokens a model
defines; "" in conversations.json means the model has none).

Run:  python3 scripts/golden/make_chat_golden.py
Needs: transformers (>= 4.43) and jinja2 >= 3.1.6. CI does not run it: the C++
test src/tokenizer/chat_template_test.cc reads the committed expected.json.
"""
import json
import pathlib
import sys

import jinja2
import transformers
from transformers.utils.chat_template_utils import render_jinja_template

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "chat"


def main() -> int:
    spec = json.loads((DATA / "conversations.json").read_text(encoding="utf-8"))
    cases = []
    for tmpl in spec["templates"]:
        source = (DATA / "templates" / tmpl["file"]).read_text(encoding="utf-8")
        for conv in spec["conversations"]:
            for agp in (False, True):
                kwargs = {}
                for tok in ("bos_token", "eos_token"):
                    if tmpl.get(tok):
                        kwargs[tok] = tmpl[tok]
                kwargs.update(conv.get("extra_context", {}))
                case = {"template": tmpl["name"], "conversation": conv["id"], "add_generation_prompt": agp}
                try:
                    rendered, _ = render_jinja_template(
                        conversations=[conv["messages"]],
                        tools=conv.get("tools"),
                        chat_template=source,
                        add_generation_prompt=agp,
                        **kwargs,
                    )
                    case["output"] = rendered[0]
                except Exception as e:  # the template raised, or Jinja failed at render time
                    case["error"] = f"{type(e).__name__}: {e}"
                cases.append(case)
    snip = json.loads((DATA / "snippets.json").read_text(encoding="utf-8"))
    snippets = []
    for src in snip["snippets"]:
        case = {"template": src}
        try:
            rendered, _ = render_jinja_template(
                conversations=[snip["messages"]], chat_template=src, add_generation_prompt=False, **snip["context"]
            )
            case["output"] = rendered[0]
        except Exception as e:
            case["error"] = f"{type(e).__name__}: {e}"
        snippets.append(case)
    out = {
        "generator": "scripts/golden/make_chat_golden.py",
        "transformers": transformers.__version__,
        "jinja2": jinja2.__version__,
        "cases": cases,
        "snippets": snippets,
    }
    (DATA / "expected.json").write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    n_err = sum("error" in c for c in cases)
    print(f"wrote {len(cases)} cases ({n_err} expected errors) to {DATA / 'expected.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
