// Filters and tests of the chat-template interpreter, with the semantics of
// Jinja 3.1 as configured by transformers (tojson is transformers' override:
// json.dumps with ensure_ascii=False).
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cctype>
#include <cstdlib>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_eval.h"

namespace formiga::jinja {

namespace {

// Binds filter arguments: positional index `i` or keyword `kw`, else `def`.
Value Arg(const CallArgs& a, size_t i, const char* kw, Value def = Value()) {
  if (i < a.positional.size()) return a.positional[i];
  for (const auto& [k, v] : a.keyword) {
    if (k == kw) return v;
  }
  return def;
}

Status CheckArgs(Interpreter& in, const CallArgs& a, size_t max_positional,
                 std::initializer_list<const char*> keywords, const std::string& fname, SourceLoc loc) {
  if (a.positional.size() > max_positional) {
    return in.Error(loc, "filter '" + fname + "' takes at most " + std::to_string(max_positional) +
                             " positional arguments, got " + std::to_string(a.positional.size()));
  }
  for (const auto& kv : a.keyword) {
    const std::string& k = kv.first;
    if (std::find_if(keywords.begin(), keywords.end(), [&](const char* x) { return k == x; }) == keywords.end()) {
      return in.Error(loc, "filter '" + fname + "' has no argument named '" + k + "'");
    }
  }
  return Status::Ok();
}

std::string HtmlEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// Python's str.replace (count < 0: all).
std::string PyReplace(const std::string& s, const std::string& old, const std::string& repl, int64_t count) {
  std::string out;
  if (old.empty()) {
    auto cps = SplitCodePoints(s);
    int64_t done = 0;
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || done < count) {
        out += repl;
        ++done;
      }
      if (i < cps.size()) out += cps[i];
    }
    return out;
  }
  size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t p = s.find(old, start);
    if (p == std::string::npos) break;
    out.append(s, start, p - start);
    out += repl;
    start = p + old.size();
    ++done;
  }
  out.append(s, start, std::string::npos);
  return out;
}

// Jinja's title filter: words start after whitespace or one of -([{<.
std::string JinjaTitle(const std::string& s) {
  std::string out;
  bool word_start = true;
  for (auto cp : SplitCodePoints(s)) {
    bool sep = cp.size() == 1 && (IsPyWhitespace(static_cast<unsigned char>(cp[0])) || cp[0] == '-' ||
                                  cp[0] == '(' || cp[0] == '{' || cp[0] == '[' || cp[0] == '<');
    std::string c(cp);
    if (sep) {
      out += c;
      word_start = true;
    } else {
      out += word_start ? PyUpper(c) : PyLower(c);
      word_start = false;
    }
  }
  return out;
}

// Python's round(x, n) for floats: correctly rounded decimal, ties to even on
// the exact binary value (what printf("%.*f") also computes).
double PyRound(double x, int64_t ndigits) {
  if (!std::isfinite(x)) return x;
  if (ndigits >= 0 && ndigits <= 300) {
    char buf[512];
    std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(ndigits), x);
    return std::strtod(buf, nullptr);
  }
  double p = std::pow(10.0, static_cast<double>(-ndigits));
  return std::nearbyint(x / p) * p;
}

// Python int(str): optional sign, digits with single underscores, surrounding whitespace.
bool ParsePyInt(const std::string& s, int64_t* out) {
  std::string t = PyStrip(s, true, true, nullptr);
  size_t i = 0;
  bool neg = false;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) neg = t[i++] == '-';
  if (i >= t.size()) return false;
  __int128 v = 0;
  bool prev_digit = false;
  for (; i < t.size(); ++i) {
    if (t[i] == '_' && prev_digit && i + 1 < t.size() && t[i + 1] != '_') {
      prev_digit = false;
      continue;
    }
    if (t[i] < '0' || t[i] > '9') return false;
    v = v * 10 + (t[i] - '0');
    if (v > static_cast<__int128>(INT64_MAX) + 1) return false;
    prev_digit = true;
  }
  if (neg) v = -v;
  if (v > INT64_MAX || v < INT64_MIN) return false;
  *out = static_cast<int64_t>(v);
  return true;
}

bool ParsePyFloat(const std::string& s, double* out) {
  std::string t = PyStrip(s, true, true, nullptr);
  if (t.empty()) return false;
  std::string clean;
  for (char c : t) {
    if (c != '_') clean += c;
  }
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(clean.c_str(), &end);
  if (end != clean.c_str() + clean.size()) return false;
  // strtod accepts hex floats; Python's float() does not.
  if (clean.find('x') != std::string::npos || clean.find('X') != std::string::npos) return false;
  *out = v;
  return true;
}

// Approximates Python's \w for a non-ASCII code point: letters of the
// Latin, Greek, Cyrillic, ... blocks, CJK and Hangul; not symbols or emoji.
bool IsWordCodePoint(std::string_view cp) {
  auto c0 = static_cast<unsigned char>(cp[0]);
  uint32_t c = c0 & (0x7F >> cp.size());
  for (size_t k = 1; k < cp.size(); ++k) c = (c << 6) | (static_cast<unsigned char>(cp[k]) & 0x3F);
  if (c == 0xAA || c == 0xB2 || c == 0xB3 || c == 0xB5 || c == 0xB9 || c == 0xBA || c == 0xBC || c == 0xBD ||
      c == 0xBE) {
    return true;
  }
  if (c >= 0xC0 && c <= 0x24F) return c != 0xD7 && c != 0xF7;
  if (c >= 0x370 && c <= 0x1FFF) return true;
  if (c >= 0x3040 && c <= 0x9FFF) return true;
  return c >= 0xAC00 && c <= 0xD7A3;
}

// Attribute getter used by map/selectattr/sort/...: "a.b.0" walks items.
Result<Value> GetPath(Interpreter& in, const Value& v, const Value& attr, SourceLoc loc) {
  if (!attr.is_string()) return in.GetItem(v, attr, loc);
  Value cur = v;
  const std::string& path = attr.str();
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    Value key = Value::String(part);
    int64_t idx = 0;
    if (!part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
        ParsePyInt(part, &idx)) {
      key = Value::Int(idx);
    }
    FORMIGA_ASSIGN_OR_RETURN(cur, in.GetItem(cur, key, loc));
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

// Sort key comparison with Jinja's case-insensitive default for strings.
Result<bool> LessForSort(Interpreter& in, const Value& a, const Value& b, bool case_sensitive, SourceLoc loc) {
  if (!case_sensitive && a.is_string() && b.is_string()) return PyLower(a.str()) < PyLower(b.str());
  return in.Compare("<", a, b, loc);
}

Status SortValues(Interpreter& in, std::vector<std::pair<Value, Value>>* keyed, bool case_sensitive, bool reverse,
                  SourceLoc loc) {
  // Insertion-based merge sort to propagate comparison errors (stable like Python's).
  Status err;
  std::stable_sort(keyed->begin(), keyed->end(), [&](const auto& x, const auto& y) {
    if (!err.ok()) return false;
    auto r = reverse ? LessForSort(in, y.first, x.first, case_sensitive, loc)
                     : LessForSort(in, x.first, y.first, case_sensitive, loc);
    if (!r.ok()) {
      err = r.status();
      return false;
    }
    return *r;
  });
  return err;
}

Value FoldCase(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value::String(PyLower(v.str()));
  return v;
}

}  // namespace

bool IsSupportedFilter(std::string_view name) {
  static const char* kNames[] = {
      "safe",  "string", "escape", "e",       "forceescape", "upper",  "lower",  "title",  "capitalize", "trim",
      "length", "count", "default", "d",      "first",       "last",   "join",   "replace", "int",       "float",
      "abs",   "round",  "list",   "items",   "reverse",     "unique", "sort",   "dictsort", "min",      "max",
      "sum",   "map",    "select", "reject",  "selectattr",  "rejectattr", "attr", "tojson", "indent",  "wordcount",
      "batch", "slice",  "pprint"};
  for (const char* n : kNames) {
    if (name == n) return true;
  }
  return false;
}

bool IsSupportedTest(std::string_view name) {
  static const char* kNames[] = {
      "defined", "undefined", "none", "boolean", "true", "false", "integer", "float", "number", "string",
      "mapping", "iterable", "sequence", "callable", "escaped", "lower", "upper", "odd", "even", "divisibleby",
      "sameas", "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt", "greaterthan", ">",
      "ge", ">=", "in"};
  for (const char* n : kNames) {
    if (name == n) return true;
  }
  return false;
}

Result<ValueList> Interpreter::Iterate(const Value& v, SourceLoc loc) {
  if (v.is_list()) return v.list();
  if (v.is_undefined()) return ValueList{};
  if (v.is_dict()) {
    ValueList keys;
    for (const auto& [k, val] : v.dict()) keys.push_back(k);
    return keys;
  }
  if (v.is_string()) {
    ValueList out;
    for (auto cp : SplitCodePoints(v.str())) out.push_back(Value::String(std::string(cp)));
    return out;
  }
  return Error(loc, "'" + v.TypeName() + "' object is not iterable");
}

Result<bool> Interpreter::ApplyTest(const std::string& name, const Value& v, CallArgs& a, SourceLoc loc) {
  auto arg0 = [&]() -> Result<Value> {
    if (a.positional.empty()) return Error(loc, "test '" + name + "' needs an argument");
    return a.positional[0];
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  // NOTE: Jinja's Undefined is iterable (empty) and has a length, so both are true for it.
  if (name == "iterable") return v.is_list() || v.is_dict() || v.is_string() || v.is_undefined();
  if (name == "sequence") return v.is_list() || v.is_dict() || v.is_string() || v.is_undefined();
  if (name == "callable") return v.is_function();
  if (name == "escaped") return false;
  if (name == "lower" || name == "upper") {
    if (!v.is_string()) return false;
    const std::string mapped = name == "lower" ? PyLower(v.str()) : PyUpper(v.str());
    return mapped == v.str();
  }
  if (name == "odd" || name == "even") {
    if (!v.is_int() && !v.is_bool()) {
      if (v.is_undefined()) return UndefinedError(loc, v);
      return Error(loc, "test '" + name + "' needs an integer, got " + v.TypeName());
    }
    bool odd = (v.as_int() % 2) != 0;
    return name == "odd" ? odd : !odd;
  }
  if (name == "divisibleby") {
    FORMIGA_ASSIGN_OR_RETURN(Value d, arg0());
    FORMIGA_ASSIGN_OR_RETURN(Value m, BinaryOp("%", v, d, loc));
    return !m.Truthy();
  }
  if (name == "sameas") {
    FORMIGA_ASSIGN_OR_RETURN(Value o, arg0());
    if (v.is_none() || v.is_bool() || v.is_undefined()) return v.kind() == o.kind() && Equal(v, o);
    return false;
  }
  static const std::pair<const char*, const char*> kCompareTests[] = {
      {"eq", "=="}, {"equalto", "=="}, {"==", "=="}, {"ne", "!="}, {"!=", "!="}, {"lt", "<"}, {"lessthan", "<"},
      {"<", "<"},   {"le", "<="},      {"<=", "<="}, {"gt", ">"},  {"greaterthan", ">"}, {">", ">"},
      {"ge", ">="}, {">=", ">="},      {"in", "in"}};
  for (const auto& [tname, op] : kCompareTests) {
    if (name == tname) {
      FORMIGA_ASSIGN_OR_RETURN(Value o, arg0());
      return Compare(op, v, o, loc);
    }
  }
  if (name == "filter" || name == "test") {
    return Error(loc, "the '" + name + "' test is not supported by formiga's Jinja subset");
  }
  return Status::Unsupported("chat template uses an unknown test '" + name + "' at " + FormatLoc(loc.line, loc.col) +
                             ", which formiga's Jinja subset does not support (see docs/chat_templates.md)");
}

Result<Value> Interpreter::ApplyFilter(const std::string& name, const Value& v, CallArgs& a, SourceLoc loc) {
  FORMIGA_RETURN_IF_ERROR(Charge(1, loc));
  auto str_arg = [&](const Value& x) { return ToStr(x); };
  if (name == "safe" || name == "string") return Value::String(ToStr(v));
  if (name == "escape" || name == "e" || name == "forceescape") return Value::String(HtmlEscape(ToStr(v)));
  if (name == "upper") return Value::String(PyUpper(ToStr(v)));
  if (name == "lower") return Value::String(PyLower(ToStr(v)));
  if (name == "title") return Value::String(JinjaTitle(ToStr(v)));
  if (name == "capitalize") {
    std::string s = PyLower(ToStr(v));
    auto cps = SplitCodePoints(s);
    if (cps.empty()) return Value::String("");
    return Value::String(PyUpper(std::string(cps[0])) + s.substr(cps[0].size()));
  }
  if (name == "trim") {
    FORMIGA_RETURN_IF_ERROR(CheckArgs(*this, a, 1, {"chars"}, name, loc));
    Value chars = Arg(a, 0, "chars", Value::None());
    std::string c = chars.is_string() ? chars.str() : std::string();
    return Value::String(PyStrip(ToStr(v), true, true, chars.is_string() ? &c : nullptr));
  }
  if (name == "length" || name == "count") {
    if (v.is_string()) return Value::Int(static_cast<int64_t>(CodePointCount(v.str())));
    if (v.is_list()) return Value::Int(static_cast<int64_t>(v.list().size()));
    if (v.is_dict()) return Value::Int(static_cast<int64_t>(v.dict().size()));
    if (v.is_undefined()) return Value::Int(0);
    return Error(loc, "object of type '" + v.TypeName() + "' has no len()");
  }
  if (name == "default" || name == "d") {
    FORMIGA_RETURN_IF_ERROR(CheckArgs(*this, a, 2, {"default_value", "boolean"}, name, loc));
    Value def = Arg(a, 0, "default_value", Value::String(""));
    bool boolean = Arg(a, 1, "boolean", Value::Bool(false)).Truthy();
    if (v.is_undefined() || (boolean && !v.Truthy())) return def;
    return v;
  }
  if (name == "first" || name == "last") {
    FORMIGA_ASSIGN_OR_RETURN(ValueList items, Iterate(v, loc));
    if (items.empty()) return Value::Undefined("No " + name + " item, sequence was empty.");
    return name == "first" ? items.front() : items.back();
  }
  if (name == "join") {
    FORMIGA_RETURN_IF_ERROR(CheckArgs(*this, a, 2, {"d", "attribute"}, name, loc));
    std::string sep = ToStr(Arg(a, 0, "d", Value::String("")));
    Value attr = Arg(a, 1, "attribute", Value::None());
    FORMIGA_ASSIGN_OR_RETURN(ValueList items, Iterate(v, loc));
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      Value item = items[i];
      if (!attr.is_none()) {
        FORMIGA_ASSIGN_OR_RETURN(item, GetPath(*this, item, attr, loc));
      }
      if (i) out += sep;
      out += ToStr(item);
      FORMIGA_RETURN_IF_ERROR(CheckStringSize(out.size(), loc));
    }
    FORMIGA_RETURN_IF_ERROR(Charge(static_cast<int64_t>(out.size()), loc));
    return Value::String(std::move(out));
  }
  if (name == "replace") {
    FORMIGA_RETURN_IF_ERROR(CheckArgs(*this, a, 3, {"old", "new", "count"}, name, loc));
    Value count = Arg(a, 2, "count", Value::None());
    if (!count.is_none() && !count.is_int()) return Error(loc, "replace count must be an integer");
    std::string out = PyReplace(ToStr(v), str_arg(Arg(a, 0, "old")), str_arg(Arg(a, 1, "new")),
                                count.is_none() ? -1 : count.as_int());
    FORMIGA_RETURN_IF_ERROR(CheckStringSize(out.size(), loc));
    FORMIGA_RETURN_IF_ERROR(Charge(static_cast<int64_t>(out.size()), loc));
    return Value::String(std::move(out));
  }
  if (name == "int") {
    Value def = Arg(a, 0, "default", Value::Int(0));
    if (v.is_int()) return v;
    if (v.is_bool()) return Value::Int(v.as_int());
    if (v.is_float()) {
      double f = v.as_float();
      if (!std::isfinite(f) || std::fabs(f) >= 9.2e18) return def;
      return Value::Int(static_cast<int64_t>(f));
    }
    if (v.is_string()) {
      int64_t i = 0;
      if (ParsePyInt(v.str(), &i)) return Value::Int(i);
      double f = 0;
      if (ParsePyFloat(v.str(), &f) && std::isfinite(f) && std::fabs(f) < 9.2e18) {
        return Value::Int(static_cast<int64_t>(f));
      }
    }
    return def;
  }
  if (name == "float") {
    Value def = Arg(a, 0, "default", Value::Float(0.0));
    if (v.is_number()) return Value::Float(v.as_double());
    double f = 0;
    if (v.is_string() && ParsePyFloat(v.str(), &f)) return Value::Float(f);
    return def;
  }
  if (name == "abs") {
    if (v.is_float()) return Value::Float(std::fabs(v.as_float()));
    if (v.is_int() || v.is_bool()) {
      if (v.as_int() == INT64_MIN) return Error(loc, "integer overflow");
      return Value::Int(v.as_int() < 0 ? -v.as_int() : v.as_int());
    }
    return Error(loc, "bad operand type for abs(): '" + v.TypeName() + "'");
  }
  if (name == "round") {
    FORMIGA_RETURN_IF_ERROR(CheckArgs(*this, a, 2, {"precision", "method"}, name, loc));
    Value prec = Arg(a, 0, "precision", Value::Int(0));
    std::string method = ToStr(Arg(a, 1, "method", Value::String("common")));
    if (!prec.is_int()) return Error(loc, "round precision must be an integer");
    if (!v.is_number()) return Error(loc, "round() needs a number, got " + v.TypeName());
    if (method == "common") {
      if (!v.is_float()) return Value::Int(v.as_int());  // Python round(int, n) keeps the int
      return Value::Float(PyRound(v.as_float(), prec.as_int()));
    }
    if (method != "floor" && method != "ceil") return Error(loc, "round method must be common, ceil or floor");
    double p = std::pow(10.0, static_cast<double>(prec.as_int()));
    double x = v.as_double() * p;
    return Value::Float((method == "floor" ? std::floor(x) : std::ceil(x)) / p);
  }
  if (name == "list") {
    FORMIGA_ASSIGN_OR_RETURN(ValueList items, Iterate(v, loc));
    return Value::List(std::move(items));
  }
  if (name == "items") {
    if (v.is_undefined()) return Value::List({});
    if (!v.is_dict()) return Error(loc, "can only get item pairs from a mapping, not " + v.TypeName());
    ValueList out;
    for (const auto& [k, val] : v.dict()) out.push_back(Value::List({k, val}, true));
    return Value::List(std::move(out));
  }
  if (name == "reverse") {
    if (v.is_string()) {
      auto cps = SplitCodePoints(v.str());
      std::string out;
      for (size_t i = cps.size(); i-- > 0;) out += cps[i];
      return Value::String(std::move(out));
    }
    FORMIGA_ASSIGN_OR_RETURN(ValueList items, Iterate(v, loc));
    std::reverse(items.begin(), items.end());
    return Value::List(std::move(items));
  }
  if (name == "unique") {
    FORMIGA_RETURN_IF_ERROR(CheckArgs(*this, a, 2, {"case_sensitive", "attribute"}, name, loc));
    bool cs = Arg(a, 0, "case_sensitive", Value::Bool(false)).Truthy();
    Value attr = Arg(a, 1, "attribute", Value::None());
    FORMIGA_ASSIGN_OR_RETURN(ValueList items, Iterate(v, loc));
    ValueList out, seen;
    for (const auto& item : items) {
      Value key = item;
      if (!attr.is_none()) {
        FORMIGA_ASSIGN_OR_RETURN(key, GetPath(*this, item, attr, loc));
      }
      key = FoldCase(key, cs);
      FORMIGA_RETURN_IF_ERROR(Charge(static_cast<int64_t>(seen.size()), loc));
      if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return Equal(s, key); })) {
        seen.push_back(key);
        out.push_back(item);
      }
    }
    return Value::List(std::move(out));
  }
  if (name == "sort" || name == "dictsort") {
    const bool dictsort = name == "dictsort";
    if (dictsort) {
      FORMIGA_RETURN_IF_ERROR(CheckArgs(*this, a, 3, {"case_sensitive", "by", "reverse"}, name, loc));
    } else {
      FORMIGA_RETURN_IF_ERROR(CheckArgs(*this, a, 3, {"reverse", "case_sensitive", "attribute"}, name, loc));
    }
    bool reverse = (dictsort ? Arg(a, 2, "reverse", Value::Bool(false)) : Arg(a, 0, "reverse", Value::Bool(false)))
                       .Truthy();
    bool cs = (dictsort ? Arg(a, 0, "case_sensitive", Value::Bool(false))
                        : Arg(a, 1, "case_sensitive", Value::Bool(false)))
                  .Truthy();
    std::vector<std::pair<Value, Value>> keyed;
    if (dictsort) {
      if (!v.is_dict()) return Error(loc, "dictsort needs a mapping, got " + v.TypeName());
      std::string by = ToStr(Arg(a, 1, "by", Value::String("key")));
      if (by != "key" && by != "value") return Error(loc, "dictsort: 'by' must be 'key' or 'value'");
      for (const auto& [k, val] : v.dict()) keyed.emplace_back(by == "key" ? k : val, Value::List({k, val}, true));
    } else {
      Value attr = Arg(a, 2, "attribute", Value::None());
      FORMIGA_ASSIGN_OR_RETURN(ValueList items, Iterate(v, loc));
      for (const auto& item : items) {
        Value key = item;
        if (!attr.is_none()) {
          FORMIGA_ASSIGN_OR_RETURN(key, GetPath(*this, item, attr, loc));
        }
        keyed.emplace_back(key, item);
      }
    }
    FORMIGA_RETURN_IF_ERROR(Charge(static_cast<int64_t>(keyed.size() * 16), loc));
    FORMIGA_RETURN_IF_ERROR(SortValues(*this, &keyed, cs, reverse, loc));
    ValueList out;
    for (auto& [k, item] : keyed) out.push_back(std::move(item));
    return Value::List(std::move(out));
  }
  if (name == "min" || name == "max") {
    FORMIGA_RETURN_IF_ERROR(CheckArgs(*this, a, 2, {"case_sensitive", "attribute"}, name, loc));
    bool cs = Arg(a, 0, "case_sensitive", Value::Bool(false)).Truthy();
    Value attr = Arg(a, 1, "attribute", Value::None());
    FORMIGA_ASSIGN_OR_RETURN(ValueList items, Iterate(v, loc));
    if (items.empty()) return Value::Undefined("No aggregated item, sequence was empty.");
    Value best = items[0], best_key;
    FORMIGA_ASSIGN_OR_RETURN(best_key, attr.is_none() ? Result<Value>(best) : GetPath(*this, best, attr, loc));
    for (size_t i = 1; i < items.size(); ++i) {
      Value key = items[i];
      if (!attr.is_none()) {
        FORMIGA_ASSIGN_OR_RETURN(key, GetPath(*this, items[i], attr, loc));
      }
      FORMIGA_ASSIGN_OR_RETURN(bool less, name == "min" ? LessForSort(*this, key, best_key, cs, loc)
                                                       : LessForSort(*this, best_key, key, cs, loc));
      if (less) {
        best = items[i];
        best_key = key;
      }
    }
    return best;
  }
  if (name == "sum") {
    FORMIGA_RETURN_IF_ERROR(CheckArgs(*this, a, 2, {"attribute", "start"}, name, loc));
    Value attr = Arg(a, 0, "attribute", Value::None());
    Value total = Arg(a, 1, "start", Value::Int(0));
    FORMIGA_ASSIGN_OR_RETURN(ValueList items, Iterate(v, loc));
    for (const auto& item : items) {
      Value x = item;
      if (!attr.is_none()) {
        FORMIGA_ASSIGN_OR_RETURN(x, GetPath(*this, item, attr, loc));
      }
      FORMIGA_ASSIGN_OR_RETURN(total, BinaryOp("+", total, x, loc));
    }
    return total;
  }
  if (name == "map") {
    FORMIGA_ASSIGN_OR_RETURN(ValueList items, Iterate(v, loc));
    ValueList out;
    Value attr = Arg(a, 99, "attribute", Value::None());
    if (!attr.is_none()) {
      Value def = Arg(a, 99, "default", Value());
      for (const auto& item : items) {
        FORMIGA_ASSIGN_OR_RETURN(Value x, GetPath(*this, item, attr, loc));
        out.push_back(x.is_undefined() && !def.is_undefined() ? def : x);
      }
      return Value::List(std::move(out));
    }
    if (a.positional.empty() || !a.positional[0].is_string()) {
      return Error(loc, "map() needs a filter name or attribute=");
    }
    std::string fname = a.positional[0].str();
    CallArgs rest;
    rest.positional.assign(a.positional.begin() + 1, a.positional.end());
    rest.keyword = a.keyword;
    for (const auto& item : items) {
      FORMIGA_ASSIGN_OR_RETURN(Value x, ApplyFilter(fname, item, rest, loc));
      out.push_back(std::move(x));
    }
    return Value::List(std::move(out));
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    const bool by_attr = name == "selectattr" || name == "rejectattr";
    const bool keep_match = name == "select" || name == "selectattr";
    FORMIGA_ASSIGN_OR_RETURN(ValueList items, Iterate(v, loc));
    size_t next = 0;
    Value attr;
    if (by_attr) {
      if (a.positional.empty()) return Error(loc, name + "() needs an attribute name");
      attr = a.positional[next++];
    }
    std::string test;
    if (next < a.positional.size()) {
      if (!a.positional[next].is_string()) return Error(loc, name + "(): the test name must be a string");
      test = a.positional[next++].str();
    }
    CallArgs test_args;
    test_args.positional.assign(a.positional.begin() + static_cast<std::ptrdiff_t>(next), a.positional.end());
    test_args.keyword = a.keyword;
    ValueList out;
    for (const auto& item : items) {
      Value x = item;
      if (by_attr) {
        FORMIGA_ASSIGN_OR_RETURN(x, GetPath(*this, item, attr, loc));
      }
      bool ok = false;
      if (test.empty()) {
        ok = x.Truthy();
      } else {
        FORMIGA_ASSIGN_OR_RETURN(ok, ApplyTest(test, x, test_args, loc));
      }
      if (ok == keep_match) out.push_back(item);
    }
    return Value::List(std::move(out));
  }
  if (name == "attr") {
    Value n = Arg(a, 0, "name");
    if (!n.is_string()) return Error(loc, "attr() needs an attribute name");
    if (v.is_dict()) return Value::Undefined("'dict object' has no attribute '" + n.str() + "'");
    return GetAttr(v, n.str(), loc);
  }
  if (name == "tojson") {
    // transformers' signature: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
    FORMIGA_RETURN_IF_ERROR(CheckArgs(*this, a, 4, {"ensure_ascii", "indent", "separators", "sort_keys"}, name, loc));
    JsonDumpOptions o;
    o.ensure_ascii = Arg(a, 0, "ensure_ascii", Value::Bool(false)).Truthy();
    Value indent = Arg(a, 1, "indent", Value::None());
    if (indent.is_int()) {
      if (indent.as_int() > 64) return Error(loc, "tojson indent above 64 is not supported");
      o.indent = static_cast<int>(std::max<int64_t>(0, indent.as_int()));
    } else if (!indent.is_none()) {
      return Error(loc, "tojson indent must be an integer or None");
    }
    Value seps = Arg(a, 2, "separators", Value::None());
    if (!seps.is_none()) {
      if (!seps.is_list() || seps.list().size() != 2 || !seps.list()[0].is_string() || !seps.list()[1].is_string()) {
        return Error(loc, "tojson separators must be a pair of strings");
      }
      o.custom_separators = true;
      o.item_separator = seps.list()[0].str();
      o.key_separator = seps.list()[1].str();
    }
    o.sort_keys = Arg(a, 3, "sort_keys", Value::Bool(false)).Truthy();
    auto r = JsonDumps(v, o);
    if (!r.ok()) return Error(loc, r.status().message());
    FORMIGA_RETURN_IF_ERROR(CheckStringSize(r->size(), loc));
    FORMIGA_RETURN_IF_ERROR(Charge(static_cast<int64_t>(r->size()), loc));
    return Value::String(std::move(*r));
  }
  if (name == "indent") {
    FORMIGA_RETURN_IF_ERROR(CheckArgs(*this, a, 3, {"width", "first", "blank"}, name, loc));
    Value width = Arg(a, 0, "width", Value::Int(4));
    bool first = Arg(a, 1, "first", Value::Bool(false)).Truthy();
    bool blank = Arg(a, 2, "blank", Value::Bool(false)).Truthy();
    std::string ind;
    if (width.is_string()) ind = width.str();
    else if (width.is_int()) ind = std::string(static_cast<size_t>(std::clamp<int64_t>(width.as_int(), 0, 256)), ' ');
    else return Error(loc, "indent width must be an integer or a string");
    std::string s = ToStr(v) + "\n";
    std::vector<std::string> lines;
    size_t start = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\n' || s[i] == '\r') {
        lines.push_back(s.substr(start, i - start));
        if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
        start = i + 1;
      }
    }
    if (start < s.size()) lines.push_back(s.substr(start));
    std::string out;
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i > 0) {
        out += "\n";
        if (blank || !lines[i].empty()) out += ind;
      }
      out += lines[i];
      FORMIGA_RETURN_IF_ERROR(CheckStringSize(out.size(), loc));
    }
    if (first) out = ind + out;
    return Value::String(std::move(out));
  }
  if (name == "wordcount") {
    int64_t n = 0;
    bool in_word = false;
    const std::string text = ToStr(v);  // the code point views point into it
    for (auto cp : SplitCodePoints(text)) {
      unsigned char c = static_cast<unsigned char>(cp[0]);
      // NOTE: approximates Python's \w (see IsWordCodePoint).
      bool word = std::isalnum(c) != 0 || c == '_';
      if (cp.size() > 1) word = IsWordCodePoint(cp);
      if (word && !in_word) ++n;
      in_word = word;
    }
    return Value::Int(n);
  }
  if (name == "batch" || name == "slice") {
    Value count_v = Arg(a, 0, name == "batch" ? "linecount" : "slices");
    Value fill = Arg(a, 1, "fill_with", Value::None());
    if (!count_v.is_int() || count_v.as_int() <= 0) return Error(loc, name + "() needs a positive integer");
    FORMIGA_ASSIGN_OR_RETURN(ValueList items, Iterate(v, loc));
    auto count = static_cast<size_t>(std::min<int64_t>(count_v.as_int(), 1 << 20));
    ValueList out;
    if (name == "batch") {
      for (size_t i = 0; i < items.size(); i += count) {
        ValueList chunk(items.begin() + static_cast<std::ptrdiff_t>(i),
                        items.begin() + static_cast<std::ptrdiff_t>(std::min(items.size(), i + count)));
        if (chunk.size() < count && !fill.is_none()) chunk.resize(count, fill);
        out.push_back(Value::List(std::move(chunk)));
      }
    } else {
      size_t per = items.size() / count, extra = items.size() % count, offset = 0;
      FORMIGA_RETURN_IF_ERROR(CheckListSize(count, loc));
      for (size_t i = 0; i < count; ++i) {
        size_t start = offset + i * per, end = start + per;
        if (i < extra) ++offset;
        end = offset + (i + 1) * per;
        ValueList chunk(items.begin() + static_cast<std::ptrdiff_t>(start),
                        items.begin() + static_cast<std::ptrdiff_t>(end));
        if (!fill.is_none() && i >= extra) chunk.push_back(fill);
        out.push_back(Value::List(std::move(chunk)));
      }
    }
    return Value::List(std::move(out));
  }
  if (name == "pprint") return Value::String(Repr(v));
  if (name == "format" || name == "random" || name == "groupby" || name == "xmlattr" || name == "urlize" ||
      name == "truncate" || name == "wordwrap" || name == "striptags" || name == "urlencode" ||
      name == "filesizeformat" || name == "center") {
    return Status::Unsupported("chat template uses the filter '" + name + "' at " + FormatLoc(loc.line, loc.col) +
                               ", which formiga's Jinja subset does not support (see docs/chat_templates.md)");
  }
  return Status::Unsupported("chat template uses an unknown filter '" + name + "' at " +
                             FormatLoc(loc.line, loc.col) +
                             ", which formiga's Jinja subset does not support (see docs/chat_templates.md)");
}

}  // namespace formiga::jinja
