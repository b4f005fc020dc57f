#!/usr/bin/env python3
"""Writes tests/data/tokenizer/corpus.txt: the tokenizer conformance corpus.

Usage: python3 scripts/golden/make_tokenizer_corpus.py [OUT]

Every line is one independent test case. Lines are escaped so that multi-line
inputs fit on one line; a reader must unescape exactly these sequences:
    \\n -> newline, \\r -> carriage return, \\t -> tab, \\\\ -> one backslash.
Any other backslash is literal. The text is hand-written seed sentences plus
systematic combinations of them (deterministic: fixed seed), written for this
project; no third-party corpus.
"""
import random
import sys
from pathlib import Path

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else (
    Path(__file__).resolve().parents[2] / "tests/data/tokenizer/corpus.txt")

EN = [
    "Hello world", "The quick brown fox jumps over the lazy dog.",
    "I can't believe it's already Friday!", "She'll be here at 5pm, won't she?",
    "We've been waiting for hours; they'd better hurry.", "HELLO WORLD IN CAPS",
    "It's a CamelCaseIdentifier and a snake_case_name.", "Don't stop me now",
    "What's the weather like today?", "A tiny ant can carry many times its own weight.",
    "formiga runs large language models on CPUs and GPUs.", "e.g. i.e. etc. vs. Mr. Dr.",
    "The year 1999 was followed by 2000 and 2001.", "Temperature: -3.5°C (feels like -7°C)",
    "Price: $1,234,567.89 or €99,99", "50% off!!! Buy now???", "Ellipsis... and more....",
    "Quotes: \"double\" and 'single' and `back`", "email me at someone@example.com",
]
PT = [
    "Não sei se vou conseguir chegar a tempo.", "A ação foi concluída com sucesso.",
    "Olá, tudo bem? Você pode me ajudar com uma dúvida?", "Eu queria saber o preço do açaí.",
    "Coração, emoção, informação e educação.", "Ele não está em casa; volta às três horas.",
    "Obrigado pela atenção! Até amanhã.", "A formiga carrega muitas vezes o seu próprio peso.",
    "Vovó fez pão de queijo e café coado.", "Quanto custa o frete para São Paulo?",
    "oi, blz? vc vai na reunião hj?", "kkkkkk que engraçado", "Preciso de ajuda com meu pedido nº 4521.",
    "Você já experimentou o novo restaurante japonês?", "Maçã, limão, melão e pêssego.",
    "Informações: útil, fácil, possível, difícil.", "Qual é a previsão do tempo para amanhã em Recife?",
]
OTHER = [
    "¿Dónde está la biblioteca? ¡Muy bien!", "El niño comió una manzana en el jardín.",
    "Le café est très chaud, n'est-ce pas ?", "Où est la gare ? C'est à côté de l'hôtel.",
    "Ich möchte ein Brötchen mit Käse, bitte.", "Die Straße ist größer als erwartet.",
    "Привет, как дела? Всё хорошо.", "Москва — столица России.",
    "你好，世界！今天天气很好。", "我喜欢学习中文和编程。", "蚂蚁可以搬运比自己重很多倍的东西。",
    "こんにちは、世界。今日はいい天気ですね。", "カタカナとひらがなと漢字を混ぜる。",
    "안녕하세요, 세계! 오늘 날씨가 좋네요.", "한국어 토큰화 테스트입니다.",
    "مرحبا بالعالم! كيف حالك اليوم؟", "اللغة العربية جميلة جدا.",
    "नमस्ते दुनिया! आप कैसे हैं?", "हिंदी में परीक्षण वाक्य।",
    "Γειά σου κόσμε", "שלום עולם", "สวัสดีชาวโลก", "Xin chào thế giới", "Merhaba dünya, nasılsın?",
]
EMOJI = [
    "😀", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇧🇷", "🇵🇹🇯🇵🇺🇸", "❤️", "🐜🐜🐜", "🤖 robot",
    "I love it 😍😍😍!", "Good job 👏🏿👏🏻", "🧑🏾‍🚀 to the moon 🚀🌕", "✅ done ❌ failed ⚠️ warn",
]
CODE = [
    "def add(a, b):\\n    return a + b", "for i in range(10):\\n\\tprint(i ** 2)",
    "if (x != nullptr && *x >= 0) { return x->value; }", "#include <vector>\\nint main() { return 0; }",
    "std::vector<int> v{1, 2, 3}; // comment", "{\"name\": \"formiga\", \"version\": [0, 1, 0], \"ok\": true}",
    "<html><body><div class=\"x\">Hi</div></body></html>", "SELECT * FROM users WHERE id = 42;",
    "x = [i for i in xs if i % 2 == 0]", "const f = (a) => a?.b ?? 'none';",
    "printf(\"%d\\\\n\", n);", "path = r'C:\\\\Users\\\\ant\\\\file.txt'", "   indented_code()",
    "if __name__ == '__main__':\\n    main()", "a+=1;b-=2;c*=3;d/=4;e%=5;", "<!-- comment --> <br/>",
    "$ ls -la | grep .txt && echo done", "fn main() -> Result<(), Box<dyn Error>> { Ok(()) }",
]
NUM = [
    "1", "12", "123", "1234", "12345", "123456789012345678901234567890", "3.14159265358979",
    "1,234,567", "0.000001", "1e-10", "6.022e23", "10^9", "2024-01-31", "12:34:56", "+55 (11) 98765-4321",
    "v1.2.3", "007", "१२३४", "٣٤٥", "Ⅻ", "½ ¾", "1st 2nd 3rd 4th",
]
SPECIAL = [
    "<|im_start|>user\\nHello<|im_end|>", "<|im_start|>assistant\\nOi!<|im_end|>\\n",
    "<start_of_turn>user\\nOlá<end_of_turn>\\n<start_of_turn>model\\n", "<s>text</s>", "<bos>hello<eos>",
    "<|endoftext|>", "before<|endoftext|>after", "<|im_", "im_start|>", "<|im_start", "<start_of_turn", "end_of_turn>",
    "<|im_start|><|im_start|>", "< |im_start| >", "<pad><unk><mask>", "<|eot_id|>", "[INST] hi [/INST]",
    "<unused0>", "<start_of_image>", "<|fim_prefix|>", "<repo_name>", "<0x41>", "<0x0A>", "▁already▁marked",
]
WS = [
    " ", "  ", "   ", "\\t", "\\n", "\\n\\n", "\\r\\n", " \\n ", "\\t\\t\\t", "          ", "\\n\\n\\n\\n\\n",
    "  leading", "trailing  ", "  both  ", "a  b   c    d", "tab\\tseparated\\tvalues", "line1\\r\\nline2\\r\\n",
    "\\u00a0nbsp", " \u00a0 ", "\u3000ideographic space", "zero\u200bwidth", "mixed \\t \\n \\r end",
]
PUNCT = ["!!!", "???", "...", "---", "***", "!?!?", "((()))", "[[[]]]", "{{{}}}", "====", "____", "~~~~",
         ".,;:", "''\"\"``", "@@##$$%%", "^^&&||", "«»‹›", "“smart quotes”", "—–-", "…", "¿¡"]
URL = ["https://example.com/path?query=1&x=y#frag", "http://localhost:8080/v1/chat/completions",
       "www.formiga.dev", "ftp://files.example.org/a/b/c.tar.gz", "mailto:ant@example.com",
       "https://pt.wikipedia.org/wiki/Formiga", "git@github.com:org/repo.git"]

ALL = EN + PT + OTHER + EMOJI + CODE + NUM + SPECIAL + WS + PUNCT + URL


def main():
    rng = random.Random(20240531)
    lines = []
    seen = set()

    def add(s):
        if s and s not in seen and "\n" not in s and "\r" not in s:
            seen.add(s)
            lines.append(s)

    for s in ALL:
        add(s)
    # Systematic variations of every seed: surrounding spaces, case, punctuation.
    for s in ALL:
        add(" " + s)
        add(s + " ")
        add("  " + s + "  ")
        add(s + "\\n")
        add("\\n" + s)
        add(s.upper())
        add(s.lower())
        add(s + "!")
        add('"' + s + '"')
        add("\\t" + s)
    # Pairs of seeds joined by different separators.
    seps = [" ", "", "\\n", "  ", "\\t", " | ", ", ", "\\r\\n", "\\n\\n", " - "]
    while len(lines) < 2100:
        a, b = rng.choice(ALL), rng.choice(ALL)
        add(a + rng.choice(seps) + b)
    # A few long lines: digit runs, whitespace runs, repeated words.
    for n in (50, 100, 200):
        add("9" * n)
        add(" " * n + "x")
        add("ab" * n)
        add("ação " * (n // 10))
        add("🐜" * (n // 10))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} lines to {OUT}")


if __name__ == "__main__":
    main()
