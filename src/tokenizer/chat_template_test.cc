// Conformance of ChatTemplate against transformers' apply_chat_template
// (tests/data/chat/expected.json, made by scripts/golden/make_chat_golden.py)
// plus unit tests of the interpreter: whitespace control, expressions,
// filters, errors for unsupported constructs, and limits.
#include "tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "core/test_models.h"

namespace formiga {
namespace {

using ojson = nlohmann::ordered_json;

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::filesystem::path DataDir() { return testing::SourceDir() / "tests" / "data" / "chat"; }

TEST(ChatTemplateConformance, MatchesTransformersByteForByte) {
  ojson spec = ojson::parse(ReadFile(DataDir() / "conversations.json"));
  ojson expected = ojson::parse(ReadFile(DataDir() / "expected.json"));
  std::map<std::string, ojson> convs;
  for (const auto& c : spec["conversations"]) convs[c["id"].get<std::string>()] = c;
  std::map<std::string, std::pair<ChatTemplate, ojson>> templates;
  for (const auto& t : spec["templates"]) {
    auto parsed = ChatTemplate::Parse(ReadFile(DataDir() / "templates" / t["file"].get<std::string>()));
    ASSERT_TRUE(parsed.ok()) << t["file"] << ": " << parsed.status().ToString();
    templates.emplace(t["name"].get<std::string>(), std::make_pair(*parsed, t));
  }
  int checked = 0;
  for (const auto& c : expected["cases"]) {
    const std::string name = c["template"].get<std::string>() + " x " + c["conversation"].get<std::string>() +
                             (c["add_generation_prompt"].get<bool>() ? " +gen" : "");
    auto& [tmpl, meta] = templates.at(c["template"].get<std::string>());
    const ojson& conv = convs.at(c["conversation"].get<std::string>());
    ChatTemplateOptions o;
    o.add_generation_prompt = c["add_generation_prompt"].get<bool>();
    o.bos_token = meta["bos_token"].get<std::string>();
    o.eos_token = meta["eos_token"].get<std::string>();
    if (conv.contains("tools")) o.tools = conv["tools"];
    if (conv.contains("extra_context")) o.extra_context = conv["extra_context"];
    auto r = tmpl.Render(conv["messages"], o);
    if (c.contains("output")) {
      ASSERT_TRUE(r.ok()) << name << ": " << r.status().ToString();
      EXPECT_EQ(*r, c["output"].get<std::string>()) << name;
    } else {
      ASSERT_FALSE(r.ok()) << name << " should fail like transformers (" << c["error"] << ") but rendered:\n" << *r;
      std::string err = c["error"].get<std::string>();
      if (err.rfind("TemplateError: ", 0) == 0) {
        // raise_exception: the template's own message must reach the caller.
        EXPECT_NE(r.status().message().find(err.substr(15)), std::string::npos)
            << name << ": " << r.status().message();
      }
    }
    ++checked;
  }
  EXPECT_GE(checked, 150);
}

TEST(ChatTemplateConformance, SnippetsMatchTransformers) {
  ojson spec = ojson::parse(ReadFile(DataDir() / "snippets.json"));
  ojson expected = ojson::parse(ReadFile(DataDir() / "expected.json"));
  ASSERT_EQ(expected["snippets"].size(), spec["snippets"].size()) << "regenerate expected.json";
  for (const auto& c : expected["snippets"]) {
    const std::string src = c["template"].get<std::string>();
    auto t = ChatTemplate::Parse(src);
    ASSERT_TRUE(t.ok()) << src << ": " << t.status().ToString();
    ChatTemplateOptions o;
    o.add_generation_prompt = false;
    o.extra_context = spec["context"];
    auto r = t->Render(spec["messages"], o);
    if (c.contains("output")) {
      ASSERT_TRUE(r.ok()) << src << ": " << r.status().ToString();
      EXPECT_EQ(*r, c["output"].get<std::string>()) << src;
    } else {
      EXPECT_FALSE(r.ok()) << src << " should fail (" << c["error"] << ") but rendered: " << *r;
    }
  }
}

TEST(ChatTemplateConformance, SmolLM2TemplateFromGguf) {
  FORMIGA_REQUIRE_MODEL(path, testing::kSmolLM2);
  // The committed smollm2.jinja was extracted from this GGUF; make sure it is
  // still the same text (tokenizer.chat_template) by rendering it.
  auto t = ChatTemplate::Parse(ReadFile(DataDir() / "templates" / "smollm2.jinja"));
  ASSERT_TRUE(t.ok());
  ChatTemplateOptions o;
  auto r = t->Render(ojson::parse(R"([{"role":"user","content":"Oi"}])"), o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nOi<|im_end|>\n<|im_start|>assistant\n");
}

// ---- interpreter unit tests ----

Result<std::string> RenderWith(std::string_view src, const ojson& ctx = ojson::object(),
                               const jinja::RenderLimits& limits = {}) {
  FORMIGA_ASSIGN_OR_RETURN(ChatTemplate t, ChatTemplate::Parse(src));
  ChatTemplateOptions o;
  o.add_generation_prompt = false;
  o.extra_context = ctx;
  o.limits = limits;
  o.now_unix_seconds = 0;
  return t.Render(ojson::array(), o);
}

std::string R(std::string_view src, const ojson& ctx = ojson::object()) {
  auto r = RenderWith(src, ctx);
  if (!r.ok()) return "ERROR: " + r.status().ToString();
  return *r;
}

TEST(JinjaWhitespace, TrimAndLstripBlocks) {
  EXPECT_EQ(R("a\n{% if true %}\nb\n{% endif %}\nc"), "a\nb\nc");
  EXPECT_EQ(R("  {% if true %}x{% endif %}"), "x");          // lstrip_blocks at line start
  EXPECT_EQ(R("a  {% if true %}x{% endif %}"), "a  x");      // not at line start
  EXPECT_EQ(R("  {{ 1 }}"), "  1");                          // lstrip does not touch {{
  EXPECT_EQ(R("a   {%- if true -%}   \n b {%- endif %}"), "ab");
  EXPECT_EQ(R("a\n  {%+ if true %}x{% endif %}"), "a\n  x");
  EXPECT_EQ(R("{% if true +%}\nx{% endif %}"), "\nx");
  EXPECT_EQ(R("a {{- 'b' -}} c"), "abc");
  EXPECT_EQ(R("x\n{# comment #}\ny"), "x\ny");
  EXPECT_EQ(R("x\n"), "x");      // keep_trailing_newline=False
  EXPECT_EQ(R("x\r\ny"), "x\ny");  // newlines normalized
  EXPECT_EQ(R("{% raw %}{{ not evaluated }}{% endraw %}"), "{{ not evaluated }}");
}

TEST(JinjaExpressions, ArithmeticAndLogic) {
  EXPECT_EQ(R("{{ 1 + 2 * 3 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}|{{ 2 ** 10 }}"), "7|3|-4|1|2|1024");
  EXPECT_EQ(R("{{ 7 / 2 }}|{{ 4 / 2 }}|{{ 0.1 + 0.2 }}|{{ 1e20 }}|{{ 1.5e-7 }}"),
            "3.5|2.0|0.30000000000000004|1e+20|1.5e-07");
  EXPECT_EQ(R("{{ 'a' ~ 1 ~ none }}|{{ 'ab' * 3 }}|{{ [1] + [2] }}"), "a1None|ababab|[1, 2]");
  EXPECT_EQ(R("{{ 1 < 2 < 3 }}|{{ 'b' in 'abc' }}|{{ 3 not in [1, 2] }}|{{ not 0 }}"), "True|True|True|True");
  EXPECT_EQ(R("{{ 0 or 'x' }}|{{ 1 and 'y' }}|{{ '' or none }}"), "x|y|None");
  EXPECT_EQ(R("{{ 'yes' if 1 > 2 else 'no' }}|{{ 'z' if false }}|"), "no||");
  EXPECT_EQ(R("{{ {'a': 1, 'b': [1, 'x', none, true]} }}"), "{'a': 1, 'b': [1, 'x', None, True]}");
  EXPECT_EQ(R("{{ (1, 'a') }}|{{ (1,) }}|{{ \"it's\" }}|{{ ['it\\'s'] }}"), "(1, 'a')|(1,)|it's|[\"it's\"]");
  EXPECT_EQ(R("{{ 'abc'[1] }}|{{ 'héllo'[1:3] }}|{{ [1,2,3,4][::-1] }}|{{ [1,2,3][-1] }}|{{ 'abc'[5:] }}"),
            "b|él|[4, 3, 2, 1]|3|");
  EXPECT_EQ(R("{{ 1 == 1.0 }}|{{ true == 1 }}|{{ 'a' == 1 }}|{{ x == y }}"), "True|True|False|True");
}

TEST(JinjaStatements, ForLoopFeatures) {
  EXPECT_EQ(R("{% for x in [1,2,3] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}"
              "{{ loop.length }};{% endfor %}"),
            "10TrueFalse3;21FalseFalse3;32FalseTrue3;");
  EXPECT_EQ(R("{% for x in [1,2,3] %}{{ loop.previtem }}-{{ loop.nextitem }},{% endfor %}"), "-2,1-3,2-,");
  EXPECT_EQ(R("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(R("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }} {% endfor %}"), "a=1 b=2 ");
  EXPECT_EQ(R("{% for k, v in {'a': 1}|items %}{{ k }}{{ v }}{% endfor %}"), "a1");
  EXPECT_EQ(R("{% for x in range(10) if x is odd %}{{ x }}{{ loop.length }},{% endfor %}"), "15,35,55,75,95,");
  EXPECT_EQ(R("{% for x in range(10) %}{% if x == 3 %}{% break %}{% endif %}{% if x is even %}{% continue %}"
              "{% endif %}{{ x }}{% endfor %}"),
            "1");
  EXPECT_EQ(R("{% for x in 'ab' %}{{ x }}{{ loop.cycle('+', '-') }}{% endfor %}"), "a+b-");
}

TEST(JinjaStatements, SetScopingNamespaceAndMacros) {
  // A set inside a loop does not leak; a namespace carries state out.
  EXPECT_EQ(R("{% set x = 1 %}{% for i in [1,2] %}{% set x = i * 10 %}{% endfor %}{{ x }}"), "1");
  EXPECT_EQ(R("{% set ns = namespace(n=0) %}{% for i in [1,2,3] %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}"),
            "6");
  EXPECT_EQ(R("{% if true %}{% set y = 5 %}{% endif %}{{ y }}"), "5");
  EXPECT_EQ(R("{% set a, b = 1, 2 %}{{ b }}{{ a }}"), "21");
  EXPECT_EQ(R("{% set block %}Hi {{ 'there' }}{% endset %}[{{ block }}]"), "[Hi there]");
  EXPECT_EQ(R("{% macro greet(name, punct='!') %}Hello {{ name }}{{ punct }}{% endmacro %}"
              "{{ greet('Ana') }} {{ greet('Bo', punct='?') }}"),
            "Hello Ana! Hello Bo?");
  EXPECT_EQ(R("{% filter upper %}abc{% endfilter %}"), "ABC");
  EXPECT_EQ(R("{% generation %}kept{% endgeneration %}"), "kept");
}

TEST(JinjaFilters, CommonFilters) {
  EXPECT_EQ(R("{{ '  x  '|trim }}|{{ 'ab'|upper }}|{{ 'hello world'|title }}|{{ 'hELLO'|capitalize }}"),
            "x|AB|Hello World|Hello");
  EXPECT_EQ(R("{{ 'ação'|upper }}|{{ 'ÇÃO'|lower }}|{{ 'açaí'|length }}"), "AÇÃO|ção|4");
  EXPECT_EQ(R("{{ [3,1,2]|sort }}|{{ [3,1,2]|sort(reverse=true)|join(',') }}|{{ ['b','A','a']|unique|list }}"),
            "[1, 2, 3]|3,2,1|['b', 'A']");
  EXPECT_EQ(R("{{ [1,2,3]|first }}{{ [1,2,3]|last }}{{ x|default('d') }}{{ ''|default('e', true) }}"), "13de");
  EXPECT_EQ(R("{{ '42'|int + 1 }}|{{ '3.7'|int }}|{{ 'x'|int }}|{{ '2.5'|float }}|{{ 2.5|round }}|{{ 3.14159|round(2) }}"),
            "43|3|0|2.5|2.0|3.14");
  EXPECT_EQ(R("{{ [{'r':'u','c':1},{'r':'a','c':2},{'c':3}]|selectattr('r','equalto','u')|map(attribute='c')|list }}"),
            "[1]");
  EXPECT_EQ(R("{{ [{'r':'u'},{'r':'a'}]|rejectattr('r','eq','u')|list|length }}|{{ [1,2,3,4]|select('even')|list }}"),
            "1|[2, 4]");
  EXPECT_EQ(R("{{ ['a','b']|map('upper')|join }}|{{ 'a-b'|replace('-', '+') }}|{{ -3|abs }}|{{ 'a b  c'|wordcount }}"),
            "AB|a+b|3|3");
  EXPECT_EQ(R("{{ {'b': 1, 'a': [1, 2.0, 'é', none, true]}|tojson }}"), "{\"b\": 1, \"a\": [1, 2.0, \"é\", null, true]}");
  EXPECT_EQ(R("{{ {'a': {'b': []}}|tojson(indent=2) }}"), "{\n  \"a\": {\n    \"b\": []\n  }\n}");
  EXPECT_EQ(R("{{ {'b': 1, 'a': 2}|tojson(sort_keys=true, separators=(',', ':')) }}"), "{\"a\":2,\"b\":1}");
  EXPECT_EQ(R("{{ '<a href=\"x\">'|e }}|{{ 'l1\nl2'|indent(2) }}|{{ [1,2,3,4,5]|batch(2)|list }}"),
            "&lt;a href=&#34;x&#34;&gt;|l1\n  l2|[[1, 2], [3, 4], [5]]");
}

TEST(JinjaMethods, StringAndDictMethods) {
  EXPECT_EQ(R("{{ ' a b '.strip() }}|{{ 'a,b'.split(',') }}|{{ ' a  b '.split() }}|{{ 'abc'.startswith('ab') }}"),
            "a b|['a', 'b']|['a', 'b']|True");
  EXPECT_EQ(R("{{ 'xax'.lstrip('x') }}|{{ 'Hello'.endswith(('lo', 'x')) }}|{{ 'hi there'.title() }}|{{ 'A'.lower() }}"),
            "ax|True|Hi There|a");
  EXPECT_EQ(R("{{ d.get('a') }}|{{ d.get('z', 5) }}|{{ d.keys()|list }}|{{ d.values()|list }}|{{ d.a }}|{{ d['b'] }}",
              ojson::parse(R"({"d": {"a": 1, "b": 2}})")),
            "1|5|['a', 'b']|[1, 2]|1|2");
}

TEST(JinjaTests, IsTests) {
  EXPECT_EQ(R("{{ x is defined }}{{ x is undefined }}{{ none is none }}{{ 'a' is string }}{{ 1 is number }}"
              "{{ 1 is integer }}{{ 1.0 is float }}{{ {} is mapping }}{{ [] is iterable }}{{ 'a' is sequence }}"),
            "FalseTrueTrueTrueTrueTrueTrueTrueTrueTrue");
  EXPECT_EQ(R("{{ true is boolean }}{{ true is true }}{{ false is false }}{{ 3 is odd }}{{ 4 is even }}"
              "{{ 9 is divisibleby 3 }}{{ 'a' is equalto 'a' }}{{ 1 is not string }}"),
            "TrueTrueTrueTrueTrueTrueTrueTrue");
}

TEST(JinjaUndefined, BehavesLikeJinjaDefaultUndefined) {
  EXPECT_EQ(R("[{{ missing }}]"), "[]");
  EXPECT_EQ(R("{{ d.nope is defined }}|{{ d.nope }}|", ojson::parse(R"({"d": {}})")), "False||");
  EXPECT_EQ(R("{% for x in missing %}x{% endfor %}{{ missing|length }}"), "0");
  auto r = RenderWith("{{ missing.attr }}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'missing' is undefined"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("line 1, column"), std::string::npos);
  r = RenderWith("{{ missing + 1 }}");
  ASSERT_FALSE(r.ok());
}

TEST(JinjaErrors, SyntaxAndUnsupportedNameLineAndColumn) {
  auto r = RenderWith("ok\n{% include 'x.j2' %}");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsUnsupported()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("{% include %}"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("line 2, column 4"), std::string::npos) << r.status().message();

  r = RenderWith("{{ 'x'|format(1) }}");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsUnsupported());
  EXPECT_NE(r.status().message().find("'format'"), std::string::npos);

  r = RenderWith("{{ x is frobnicated }}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("the test 'frobnicated'"), std::string::npos) << r.status().message();
  // Like Jinja, unknown filters fail when the template is parsed, even in branches never taken.
  auto p = ChatTemplate::Parse("{% if false %}{{ x|frobnicate }}{% endif %}");
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(p.status().IsUnsupported());
  EXPECT_NE(p.status().message().find("line 1, column 20"), std::string::npos) << p.status().message();
  // Filters named at run time (map/select) are checked when called.
  r = RenderWith("{{ ['a']|map('frobnicate')|list }}");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsUnsupported());

  for (const char* bad : {"{% if x %}", "{{ 1 + }}", "{% for %}", "{{ 'unterminated }}", "{# never closed",
                          "{% endfor %}", "{{ (1 }}", "{% macro m( %}{% endmacro %}", "{{ a[] }}"}) {
    r = RenderWith(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("line 1, column"), std::string::npos) << bad << ": " << r.status().message();
  }
}

TEST(JinjaErrors, RaiseExceptionCarriesTheMessage) {
  auto r = RenderWith("{{ raise_exception('Roles must alternate!') }}");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_NE(r.status().message().find("Roles must alternate!"), std::string::npos) << r.status().message();
}

TEST(JinjaErrors, SandboxRefusesMutation) {
  auto r = RenderWith("{% set l = [] %}{{ l.append(1) }}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unsafe"), std::string::npos) << r.status().message();
  r = RenderWith("{% set ns = namespace() %}{% set ns._x = 1 %}");
  ASSERT_FALSE(r.ok());
}

TEST(JinjaLimits, HostileTemplatesStop) {
  jinja::RenderLimits small;
  small.max_loop_iterations = 1000;
  small.max_output_bytes = 1 << 16;
  small.max_call_depth = 16;
  auto r = RenderWith("{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}", {}, small);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(r.status().message().find("loop iterations"), std::string::npos);

  r = RenderWith("{% for i in range(1000) %}{{ 'x' * 1000 }}{% endfor %}", {}, small);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);

  r = RenderWith("{{ 'x' * 100000000000 }}", {}, small);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);

  r = RenderWith("{{ range(10000000000)|length }}", {}, small);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);

  r = RenderWith("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", {}, small);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(r.status().message().find("macro"), std::string::npos);

  r = RenderWith("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);

  r = RenderWith("{% set ns = namespace(s='xx') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                 {}, small);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
}

TEST(ChatTemplateApi, FallbackAndInputValidation) {
  ChatTemplate t = ChatTemplate::ChatMLFallback();
  ChatTemplateOptions o;
  auto r = t.Render(ojson::parse(R"([{"role":"user","content":"Oi 🐜"}])"), o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "<|im_start|>user\nOi 🐜<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_FALSE(t.Render(ojson::parse(R"({"role":"user"})"), o).ok());
  EXPECT_FALSE(t.Render(ojson::parse(R"([1])"), o).ok());
  o.extra_context = ojson::parse(R"({"messages": []})");
  EXPECT_FALSE(t.Render(ojson::array(), o).ok());
  // nlohmann::json input works too.
  ChatTemplateOptions o2;
  auto r2 = t.Render(nlohmann::json::parse(R"([{"role":"user","content":"x"}])"), o2);
  ASSERT_TRUE(r2.ok());
}

TEST(ChatTemplateApi, StrftimeNowUsesTheInjectedClock) {
  auto t = ChatTemplate::Parse("{{ strftime_now('%Y') }}");
  ASSERT_TRUE(t.ok());
  ChatTemplateOptions o;
  o.now_unix_seconds = 1'700'000'000;  // 2023-11-14/15 in every time zone
  auto r = t->Render(ojson::array(), o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "2023");
}

}  // namespace
}  // namespace formiga
