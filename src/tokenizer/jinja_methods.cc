// Attribute/item access, slicing, str/dict/list methods and the global
// functions of transformers' chat-template environment.
#include <algorithm>
#include <ctime>
#include <map>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_eval.h"

namespace formiga::jinja {

namespace {

uint32_t Decode(std::string_view s) {
  auto c = static_cast<unsigned char>(s[0]);
  if (c < 0x80 || s.size() == 1) return c;
  uint32_t cp = c & (0x7F >> s.size());
  for (size_t k = 1; k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[k]) & 0x3F);
  return cp;
}

void Encode(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    *out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    *out += static_cast<char>(0xC0 | (cp >> 6));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *out += static_cast<char>(0xE0 | (cp >> 12));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *out += static_cast<char>(0xF0 | (cp >> 18));
    *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Case mapping for ASCII, Latin-1, Greek and basic Cyrillic.
// NOTE: full Unicode case tables are out of scope; these cover the languages
// formiga's users write in (Portuguese first) and are documented.
uint32_t ToUpperCp(uint32_t c) {
  if (c >= 'a' && c <= 'z') return c - 32;
  if (c >= 0xE0 && c <= 0xFE && c != 0xF7) return c - 32;
  if (c == 0xFF) return 0x178;
  if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 32;
  if (c >= 0x430 && c <= 0x44F) return c - 32;
  if (c >= 0x450 && c <= 0x45F) return c - 80;
  return c;
}
uint32_t ToLowerCp(uint32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
  if (c == 0x178) return 0xFF;
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  return c;
}
bool IsCased(uint32_t c) { return ToUpperCp(c) != c || ToLowerCp(c) != c || c == 0xDF; }

std::string MapCase(const std::string& s, bool upper) {
  std::string out;
  out.reserve(s.size());
  for (auto cp : SplitCodePoints(s)) {
    uint32_t c = Decode(cp);
    if (upper && c == 0xDF) {
      out += "SS";  // Python: 'ß'.upper() == 'SS'
      continue;
    }
    if (cp.size() > 1 && c < 0x80) {  // invalid sequence: keep bytes
      out += cp;
      continue;
    }
    Encode(upper ? ToUpperCp(c) : ToLowerCp(c), &out);
  }
  return out;
}

// Python str.title(): a cased letter after an uncased character starts a word.
std::string PyTitle(const std::string& s) {
  std::string out;
  bool prev_cased = false;
  for (auto cp : SplitCodePoints(s)) {
    uint32_t c = Decode(cp);
    bool cased = IsCased(c);
    if (cp.size() > 1 && c < 0x80) {
      out += cp;
    } else {
      Encode(cased ? (prev_cased ? ToLowerCp(c) : ToUpperCp(c)) : c, &out);
    }
    prev_cased = cased;
  }
  return out;
}

std::string PyCapitalize(const std::string& s) {
  std::string lower = PyLower(s);
  auto cps = SplitCodePoints(lower);
  if (cps.empty()) return lower;
  std::string out = PyUpper(std::string(cps[0]));
  out.append(lower, cps[0].size(), std::string::npos);
  return out;
}

Value Str(std::string s) { return Value::String(std::move(s)); }

std::vector<std::string> SplitWhitespace(const std::string& s, int64_t maxsplit) {
  std::vector<std::string> out;
  auto cps = SplitCodePoints(s);
  size_t i = 0;
  while (i < cps.size()) {
    while (i < cps.size() && IsPyWhitespace(Decode(cps[i]))) ++i;
    if (i >= cps.size()) break;
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
      std::string rest;
      for (size_t k = i; k < cps.size(); ++k) rest += cps[k];
      // Python strips trailing whitespace only when splitting fully.
      out.push_back(PyStrip(rest, false, true, nullptr));
      return out;
    }
    std::string word;
    while (i < cps.size() && !IsPyWhitespace(Decode(cps[i]))) word += cps[i++];
    out.push_back(std::move(word));
  }
  return out;
}

// A method bound to its receiver: str/dict/list methods templates call.
class BoundMethod : public Function {
 public:
  BoundMethod(Value self, std::string name) : self_(std::move(self)), name_(std::move(name)) {}
  std::string_view name() const override { return name_; }
  Result<Value> Call(Interpreter& in, CallArgs& a, SourceLoc loc) override;

 private:
  Result<Value> Arg(Interpreter& in, CallArgs& a, size_t i, const char* kw, SourceLoc loc, bool required,
                    Value def = Value::None()) {
    if (i < a.positional.size()) return a.positional[i];
    for (auto& [k, v] : a.keyword) {
      if (k == kw) return v;
    }
    if (required) return in.Error(loc, name_ + "() missing argument '" + kw + "'");
    return def;
  }
  Result<Value> CallStr(Interpreter& in, CallArgs& a, SourceLoc loc);
  Value self_;
  std::string name_;
};

// A mutating method the immutable sandbox refuses (list.append, dict.update, ...).
class UnsafeMethod : public Function {
 public:
  UnsafeMethod(std::string type, std::string name) : type_(std::move(type)), name_(std::move(name)) {}
  std::string_view name() const override { return name_; }
  Result<Value> Call(Interpreter& in, CallArgs&, SourceLoc loc) override {
    return in.Error(loc, "access to attribute '" + name_ + "' of '" + type_ +
                             "' object is unsafe (chat templates run in an immutable sandbox, as in transformers)");
  }

 private:
  std::string type_, name_;
};

bool IsOneOf(const std::string& s, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (s == n) return true;
  }
  return false;
}

Result<Value> BoundMethod::Call(Interpreter& in, CallArgs& a, SourceLoc loc) {
  if (self_.is_string()) return CallStr(in, a, loc);
  if (self_.is_dict()) {
    if (name_ == "items") {
      ValueList out;
      for (const auto& [k, v] : self_.dict()) out.push_back(Value::List({k, v}, true));
      return Value::List(std::move(out));
    }
    if (name_ == "keys" || name_ == "values") {
      ValueList out;
      for (const auto& [k, v] : self_.dict()) out.push_back(name_ == "keys" ? k : v);
      return Value::List(std::move(out));
    }
    if (name_ == "get") {
      FORMIGA_ASSIGN_OR_RETURN(Value key, Arg(in, a, 0, "key", loc, true));
      FORMIGA_ASSIGN_OR_RETURN(Value def, Arg(in, a, 1, "default", loc, false));
      const Value* v = self_.Find(key);
      return v ? *v : def;
    }
    if (name_ == "copy") return Value::Dict(self_.dict());
  }
  if (self_.is_list()) {
    if (name_ == "count") {
      FORMIGA_ASSIGN_OR_RETURN(Value x, Arg(in, a, 0, "value", loc, true));
      int64_t n = 0;
      for (const auto& v : self_.list()) n += Equal(v, x) ? 1 : 0;
      return Value::Int(n);
    }
    if (name_ == "index") {
      FORMIGA_ASSIGN_OR_RETURN(Value x, Arg(in, a, 0, "value", loc, true));
      for (size_t i = 0; i < self_.list().size(); ++i) {
        if (Equal(self_.list()[i], x)) return Value::Int(static_cast<int64_t>(i));
      }
      return in.Error(loc, Repr(x) + " is not in list");
    }
  }
  return in.Error(loc, "method '" + name_ + "' of " + self_.TypeName() + " is not supported");
}

Result<Value> BoundMethod::CallStr(Interpreter& in, CallArgs& a, SourceLoc loc) {
  const std::string& s = self_.str();
  if (name_ == "strip" || name_ == "lstrip" || name_ == "rstrip") {
    FORMIGA_ASSIGN_OR_RETURN(Value chars, Arg(in, a, 0, "chars", loc, false));
    std::string c = chars.is_string() ? chars.str() : std::string();
    return Str(PyStrip(s, name_ != "rstrip", name_ != "lstrip", chars.is_string() ? &c : nullptr));
  }
  if (name_ == "upper") return Str(PyUpper(s));
  if (name_ == "lower") return Str(PyLower(s));
  if (name_ == "title") return Str(PyTitle(s));
  if (name_ == "capitalize") return Str(PyCapitalize(s));
  if (name_ == "startswith" || name_ == "endswith") {
    FORMIGA_ASSIGN_OR_RETURN(Value p, Arg(in, a, 0, "prefix", loc, true));
    ValueList options = p.is_tuple() ? p.list() : ValueList{p};
    for (const auto& o : options) {
      if (!o.is_string()) return in.Error(loc, name_ + "() argument must be str or a tuple of str");
      const std::string& x = o.str();
      if (x.size() > s.size()) continue;
      if (name_ == "startswith" ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0) {
        return Value::Bool(true);
      }
    }
    return Value::Bool(false);
  }
  if (name_ == "split" || name_ == "rsplit") {
    FORMIGA_ASSIGN_OR_RETURN(Value sep, Arg(in, a, 0, "sep", loc, false));
    FORMIGA_ASSIGN_OR_RETURN(Value maxv, Arg(in, a, 1, "maxsplit", loc, false, Value::Int(-1)));
    int64_t maxsplit = maxv.is_int() ? maxv.as_int() : -1;
    ValueList out;
    if (sep.is_none()) {
      if (name_ == "rsplit" && maxsplit >= 0) {
        return in.Error(loc, "rsplit() with maxsplit and no separator is not supported");
      }
      for (auto& w : SplitWhitespace(s, maxsplit)) out.push_back(Str(std::move(w)));
      return Value::List(std::move(out));
    }
    if (!sep.is_string()) return in.Error(loc, "split() separator must be a string or None");
    const std::string& d = sep.str();
    if (d.empty()) return in.Error(loc, "empty separator");
    std::vector<std::string> parts;
    if (name_ == "split") {
      size_t start = 0;
      while (true) {
        size_t p = s.find(d, start);
        if (p == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(parts.size()) >= maxsplit)) break;
        parts.push_back(s.substr(start, p - start));
        start = p + d.size();
      }
      parts.push_back(s.substr(start));
    } else {
      size_t end = s.size();
      while (true) {
        if (end < d.size()) break;
        size_t p = s.rfind(d, end - d.size());
        if (p == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(parts.size()) >= maxsplit)) break;
        parts.push_back(s.substr(p + d.size(), end - p - d.size()));
        end = p;
      }
      parts.push_back(s.substr(0, end));
      std::reverse(parts.begin(), parts.end());
    }
    FORMIGA_RETURN_IF_ERROR(in.CheckListSize(parts.size(), loc));
    for (auto& p : parts) out.push_back(Str(std::move(p)));
    return Value::List(std::move(out));
  }
  if (name_ == "splitlines") {
    ValueList out;
    size_t start = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\n' || s[i] == '\r') {
        out.push_back(Str(s.substr(start, i - start)));
        if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
        start = i + 1;
      }
    }
    if (start < s.size()) out.push_back(Str(s.substr(start)));
    return Value::List(std::move(out));
  }
  if (name_ == "replace") {
    FORMIGA_ASSIGN_OR_RETURN(Value oldv, Arg(in, a, 0, "old", loc, true));
    FORMIGA_ASSIGN_OR_RETURN(Value newv, Arg(in, a, 1, "new", loc, true));
    FORMIGA_ASSIGN_OR_RETURN(Value countv, Arg(in, a, 2, "count", loc, false, Value::Int(-1)));
    if (!oldv.is_string() || !newv.is_string()) return in.Error(loc, "replace() arguments must be strings");
    CallArgs fa;
    fa.positional = {oldv, newv};
    if (countv.is_int() && countv.as_int() >= 0) fa.positional.push_back(countv);
    return in.ApplyFilter("replace", self_, fa, loc);
  }
  if (name_ == "find" || name_ == "rfind" || name_ == "count") {
    FORMIGA_ASSIGN_OR_RETURN(Value sub, Arg(in, a, 0, "sub", loc, true));
    if (!sub.is_string()) return in.Error(loc, name_ + "() argument must be str");
    const std::string& x = sub.str();
    if (name_ == "count") {
      if (x.empty()) return Value::Int(static_cast<int64_t>(CodePointCount(s)) + 1);
      int64_t n = 0;
      for (size_t p = s.find(x); p != std::string::npos; p = s.find(x, p + x.size())) ++n;
      return Value::Int(n);
    }
    size_t p = name_ == "find" ? s.find(x) : s.rfind(x);
    if (p == std::string::npos) return Value::Int(-1);
    return Value::Int(static_cast<int64_t>(CodePointCount(std::string_view(s).substr(0, p))));
  }
  if (name_ == "join") {
    FORMIGA_ASSIGN_OR_RETURN(Value seq, Arg(in, a, 0, "iterable", loc, true));
    FORMIGA_ASSIGN_OR_RETURN(ValueList items, in.Iterate(seq, loc));
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].is_string()) {
        return in.Error(loc, "sequence item " + std::to_string(i) + ": expected str instance, " +
                                 items[i].TypeName() + " found");
      }
      if (i) out += s;
      out += items[i].str();
      FORMIGA_RETURN_IF_ERROR(in.CheckStringSize(out.size(), loc));
    }
    return Str(std::move(out));
  }
  if (IsOneOf(name_, {"isdigit", "isalpha", "isalnum", "isspace", "isupper", "islower"})) {
    if (s.empty()) return Value::Bool(false);
    bool any_cased = false, all = true;
    for (auto cp : SplitCodePoints(s)) {
      uint32_t c = Decode(cp);
      bool digit = c >= '0' && c <= '9';
      bool alpha = IsCased(c);
      if (name_ == "isdigit") all &= digit;
      else if (name_ == "isalpha") all &= alpha;
      else if (name_ == "isalnum") all &= digit || alpha;
      else if (name_ == "isspace") all &= IsPyWhitespace(c);
      else if (alpha) {
        any_cased = true;
        bool is_upper = ToUpperCp(c) == c && c != 0xDF;
        all &= name_ == "isupper" ? is_upper : !is_upper;
      }
    }
    if (name_ == "isupper" || name_ == "islower") return Value::Bool(all && any_cased);
    return Value::Bool(all);
  }
  return in.Error(loc, "string method '" + name_ + "' is not supported by formiga's Jinja subset");
}

const char* kStrMethods[] = {"strip", "lstrip", "rstrip", "upper", "lower", "title", "capitalize",
                             "startswith", "endswith", "split", "rsplit", "splitlines", "replace", "find",
                             "rfind", "count", "join", "isdigit", "isalpha", "isalnum", "isspace", "isupper",
                             "islower", "format"};
const char* kDictMethods[] = {"items", "keys", "values", "get", "copy"};
const char* kDictUnsafe[] = {"pop", "popitem", "update", "setdefault", "clear"};
const char* kListMethods[] = {"count", "index"};
const char* kListUnsafe[] = {"append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear"};

template <size_t N>
bool In(const std::string& s, const char* (&names)[N]) {
  for (const char* n : names) {
    if (s == n) return true;
  }
  return false;
}

// Python-visible methods of `obj` (nullptr-like undefined when none).
Value MethodOf(const Value& obj, const std::string& name) {
  if (obj.is_string() && In(name, kStrMethods)) return Value::Func(std::make_shared<BoundMethod>(obj, name));
  if (obj.is_dict()) {
    if (In(name, kDictMethods)) return Value::Func(std::make_shared<BoundMethod>(obj, name));
    if (In(name, kDictUnsafe)) return Value::Func(std::make_shared<UnsafeMethod>("dict", name));
  }
  if (obj.is_list()) {
    if (In(name, kListMethods)) return Value::Func(std::make_shared<BoundMethod>(obj, name));
    if (In(name, kListUnsafe)) return Value::Func(std::make_shared<UnsafeMethod>(obj.TypeName(), name));
  }
  return Value();
}

std::string ObjectTypeRepr(const Value& v) {
  if (v.is_none()) return "None";
  return v.TypeName() + " object";
}

// ---- globals ----
class GlobalFunction : public Function {
 public:
  using Impl = Result<Value> (*)(Interpreter&, CallArgs&, SourceLoc);
  GlobalFunction(std::string name, Impl impl) : name_(std::move(name)), impl_(impl) {}
  std::string_view name() const override { return name_; }
  Result<Value> Call(Interpreter& in, CallArgs& a, SourceLoc loc) override { return impl_(in, a, loc); }

 private:
  std::string name_;
  Impl impl_;
};

Result<Value> GlobalRange(Interpreter& in, CallArgs& a, SourceLoc loc) {
  if (!a.keyword.empty() || a.positional.empty() || a.positional.size() > 3) {
    return in.Error(loc, "range() takes 1 to 3 positional integer arguments");
  }
  for (const auto& v : a.positional) {
    if (!v.is_int() && !v.is_bool()) return in.Error(loc, "range() arguments must be integers, not " + v.TypeName());
  }
  int64_t start = 0, stop = 0, step = 1;
  if (a.positional.size() == 1) {
    stop = a.positional[0].as_int();
  } else {
    start = a.positional[0].as_int();
    stop = a.positional[1].as_int();
    if (a.positional.size() == 3) step = a.positional[2].as_int();
  }
  if (step == 0) return in.Error(loc, "range() arg 3 must not be zero");
  // Count without overflow: work in long double.
  long double span = step > 0 ? static_cast<long double>(stop) - start : static_cast<long double>(start) - stop;
  long double count_ld = span <= 0 ? 0 : (span + (step > 0 ? step : -step) - 1) / (step > 0 ? step : -step);
  if (count_ld > static_cast<long double>(SIZE_MAX / 2)) count_ld = static_cast<long double>(SIZE_MAX / 2);
  auto count = static_cast<size_t>(count_ld);
  FORMIGA_RETURN_IF_ERROR(in.CheckListSize(count, loc));
  FORMIGA_RETURN_IF_ERROR(in.Charge(static_cast<int64_t>(count), loc));
  ValueList out;
  out.reserve(count);
  for (size_t i = 0; i < count; ++i) out.push_back(Value::Int(start + static_cast<int64_t>(i) * step));
  return Value::List(std::move(out));
}

Result<ValueDict> DictFromArgs(Interpreter& in, CallArgs& a, SourceLoc loc, const char* fname) {
  ValueDict d;
  auto put = [&](Value k, Value v) {
    for (auto& [ek, ev] : d) {
      if (Equal(ek, k)) {
        ev = std::move(v);
        return;
      }
    }
    d.emplace_back(std::move(k), std::move(v));
  };
  if (a.positional.size() > 1) return in.Error(loc, std::string(fname) + "() takes at most one positional argument");
  if (a.positional.size() == 1) {
    const Value& src = a.positional[0];
    if (src.is_dict() || src.is_namespace()) {
      for (const auto& [k, v] : src.dict()) put(k, v);
    } else if (src.is_list()) {
      for (const auto& item : src.list()) {
        if (!item.is_list() || item.list().size() != 2) {
          return in.Error(loc, std::string(fname) + "() sequence elements must be pairs");
        }
        put(item.list()[0], item.list()[1]);
      }
    } else {
      return in.Error(loc, std::string(fname) + "() argument must be a mapping or a sequence of pairs");
    }
  }
  for (auto& [k, v] : a.keyword) put(Value::String(k), v);
  return d;
}

Result<Value> GlobalDict(Interpreter& in, CallArgs& a, SourceLoc loc) {
  FORMIGA_ASSIGN_OR_RETURN(ValueDict d, DictFromArgs(in, a, loc, "dict"));
  return Value::Dict(std::move(d));
}

Result<Value> GlobalNamespace(Interpreter& in, CallArgs& a, SourceLoc loc) {
  FORMIGA_ASSIGN_OR_RETURN(ValueDict d, DictFromArgs(in, a, loc, "namespace"));
  for (const auto& [k, v] : d) {
    if (k.is_string() && !k.str().empty() && k.str()[0] == '_') {
      return in.Error(loc, "chat templates cannot store underscore-prefixed attributes on a namespace ('" +
                               k.str() + "')");
    }
  }
  return Value::Namespace(std::move(d));
}

Result<Value> GlobalRaise(Interpreter& in, CallArgs& a, SourceLoc loc) {
  std::string msg = a.positional.empty() ? std::string() : ToStr(a.positional[0]);
  return Status::InvalidArgument("chat template raised an error: " + msg + " (raise_exception at " +
                                 FormatLoc(loc.line, loc.col) + ")");
}

Result<Value> GlobalStrftimeNow(Interpreter& in, CallArgs& a, SourceLoc loc) {
  if (a.positional.size() != 1 || !a.positional[0].is_string()) {
    return in.Error(loc, "strftime_now() takes one format string");
  }
  std::time_t now = in.now_unix() >= 0 ? static_cast<std::time_t>(in.now_unix()) : std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  const std::string& fmt = a.positional[0].str();
  if (fmt.empty()) return Value::String("");
  std::string buf(fmt.size() * 8 + 64, '\0');
  size_t n = std::strftime(buf.data(), buf.size(), fmt.c_str(), &tm);
  if (n == 0) return in.Error(loc, "strftime_now(): format produced no output or is too long");
  buf.resize(n);
  return Value::String(std::move(buf));
}

const std::map<std::string, Value>& Globals() {
  static const auto* globals = [] {
    auto* m = new std::map<std::string, Value>();
    auto add = [&](const char* name, GlobalFunction::Impl impl) {
      (*m)[name] = Value::Func(std::make_shared<GlobalFunction>(name, impl));
    };
    add("range", GlobalRange);
    add("dict", GlobalDict);
    add("namespace", GlobalNamespace);
    add("raise_exception", GlobalRaise);
    add("strftime_now", GlobalStrftimeNow);
    return m;
  }();
  return *globals;
}

}  // namespace

const Value* FindGlobal(const std::string& name) {
  const auto& g = Globals();
  auto it = g.find(name);
  return it == g.end() ? nullptr : &it->second;
}

bool IsPyWhitespace(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string PyStrip(const std::string& s, bool left, bool right, const std::string* chars) {
  auto cps = SplitCodePoints(s);
  std::vector<std::string_view> set;
  if (chars != nullptr) set = SplitCodePoints(*chars);
  auto strip_it = [&](std::string_view cp) {
    if (chars == nullptr) return IsPyWhitespace(Decode(cp));
    return std::find(set.begin(), set.end(), cp) != set.end();
  };
  size_t b = 0, e = cps.size();
  if (left) {
    while (b < e && strip_it(cps[b])) ++b;
  }
  if (right) {
    while (e > b && strip_it(cps[e - 1])) --e;
  }
  std::string out;
  for (size_t i = b; i < e; ++i) out += cps[i];
  return out;
}

std::string PyUpper(const std::string& s) { return MapCase(s, true); }
std::string PyLower(const std::string& s) { return MapCase(s, false); }

Result<Value> Interpreter::GetAttr(const Value& obj, const std::string& name, SourceLoc loc) {
  if (obj.is_undefined()) return UndefinedError(loc, obj);
  Value m = MethodOf(obj, name);
  if (!m.is_undefined()) return m;
  if (obj.is_dict() || obj.is_namespace()) {
    if (const Value* v = obj.Find(name)) return *v;
  }
  return Value::Undefined("'" + ObjectTypeRepr(obj) + "' has no attribute '" + name + "'");
}

Result<Value> Interpreter::GetItem(const Value& obj, const Value& key, SourceLoc loc) {
  if (obj.is_undefined()) return UndefinedError(loc, obj);
  if (obj.is_dict()) {
    if (const Value* v = obj.Find(key)) return *v;
  } else if ((obj.is_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t i = key.as_int();
    if (obj.is_list()) {
      auto n = static_cast<int64_t>(obj.list().size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return obj.list()[static_cast<size_t>(i)];
    } else {
      auto cps = SplitCodePoints(obj.str());
      auto n = static_cast<int64_t>(cps.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return Value::String(std::string(cps[static_cast<size_t>(i)]));
    }
    return Value::Undefined("'" + ObjectTypeRepr(obj) + "' has no element " + ToStr(key));
  }
  if (key.is_string()) {
    if (obj.is_namespace()) {
      if (const Value* v = obj.Find(key)) return *v;
    }
    Value m = MethodOf(obj, key.str());
    if (!m.is_undefined()) return m;
    return Value::Undefined("'" + ObjectTypeRepr(obj) + "' has no attribute '" + key.str() + "'");
  }
  return Value::Undefined("'" + ObjectTypeRepr(obj) + "' has no element " + Repr(key));
}

Result<Value> SliceValue(Interpreter& in, const Value& obj, const Value& start_v, const Value& stop_v,
                         const Value& step_v, SourceLoc loc) {
  if (obj.is_undefined()) return in.UndefinedError(loc, obj);
  if (!obj.is_list() && !obj.is_string()) return Value::Undefined("'" + ObjectTypeRepr(obj) + "' cannot be sliced");
  for (const Value* v : {&start_v, &stop_v, &step_v}) {
    if (!v->is_none() && !v->is_int() && !v->is_bool()) {
      return in.Error(loc, "slice indices must be integers or None, not " + v->TypeName());
    }
  }
  int64_t step = step_v.is_none() ? 1 : step_v.as_int();
  if (step == 0) return in.Error(loc, "slice step cannot be zero");
  std::vector<std::string_view> cps;
  int64_t n;
  if (obj.is_string()) {
    cps = SplitCodePoints(obj.str());
    n = static_cast<int64_t>(cps.size());
  } else {
    n = static_cast<int64_t>(obj.list().size());
  }
  const int64_t lower = step > 0 ? 0 : -1;
  const int64_t upper = step > 0 ? n : n - 1;
  auto adjust = [&](const Value& v, int64_t def) {
    if (v.is_none()) return def;
    int64_t x = v.as_int();
    if (x < 0) {
      x = x < -n ? lower : x + n;
      if (x < lower) x = lower;
    } else if (x > upper) {
      x = upper;
    }
    return x;
  };
  int64_t start = adjust(start_v, step > 0 ? lower : upper);
  int64_t stop = adjust(stop_v, step > 0 ? upper : lower);
  std::string s;
  ValueList items;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (obj.is_string()) s += cps[static_cast<size_t>(i)];
    else items.push_back(obj.list()[static_cast<size_t>(i)]);
    if (step < 0 && i < INT64_MIN - step) break;
    if (step > 0 && i > INT64_MAX - step) break;
  }
  FORMIGA_RETURN_IF_ERROR(in.Charge(static_cast<int64_t>(s.size() + items.size()), loc));
  if (obj.is_string()) return Value::String(std::move(s));
  return Value::List(std::move(items), obj.is_tuple());
}

}  // namespace formiga::jinja
