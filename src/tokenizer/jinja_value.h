// Values of the Jinja-subset interpreter behind chat templates.
//
// A Value mirrors the Python object a Jinja template would see under Hugging
// Face transformers: undefined, None, bool, int, float, str, list/tuple, dict
// (insertion-ordered), namespace and callables. Printing, truthiness, equality,
// repr() and json.dumps() follow Python's rules so that rendered prompts are
// byte-identical to transformers' apply_chat_template.
//
// Strings are UTF-8; length, indexing and slicing count code points like
// Python does.
//
// Thread safety: lists and dicts are shared immutable data (the sandbox that
// transformers uses forbids mutating them); only namespaces are mutated, and
// only by the render that created them. A Value is not safe to share across
// threads while a render is running.
// Ownership: containers are reference-counted (shared_ptr); copying a Value is cheap.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace formiga::jinja {

class Value;
class Interpreter;
struct SourceLoc {
  int line = 0;
  int col = 0;
};

using ValueList = std::vector<Value>;
// Insertion-ordered like Python's dict. Keys are Values (usually strings);
// lookups are linear, which is fine for chat-sized data.
using ValueDict = std::vector<std::pair<Value, Value>>;

// Arguments of a call: positional then keyword, in source order.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

// A callable (builtin global, bound method, macro). `Call` receives the
// interpreter so that macros can render and limits can be enforced.
class Function {
 public:
  virtual ~Function() = default;
  virtual std::string_view name() const = 0;
  virtual Result<Value> Call(Interpreter& interp, CallArgs& args, SourceLoc loc) = 0;
};

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace, kFunction };

  Value() = default;  // undefined
  static Value Undefined(std::string hint = {});
  static Value None();
  static Value Bool(bool b);
  static Value Int(int64_t i);
  static Value Float(double f);
  static Value String(std::string s);
  static Value List(ValueList items, bool is_tuple = false);
  static Value Dict(ValueDict items);
  static Value Namespace(ValueDict items);
  static Value Func(std::shared_ptr<Function> f);
  // Converts JSON (objects keep their key order).
  static Value FromJson(const nlohmann::ordered_json& j);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat || kind_ == Kind::kBool; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_tuple() const { return kind_ == Kind::kList && is_tuple_; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_function() const { return kind_ == Kind::kFunction; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return i_; }
  double as_float() const { return f_; }
  // Numeric value of a bool/int/float as double.
  double as_double() const;
  const std::string& str() const { return *s_; }
  const ValueList& list() const { return *list_; }
  const ValueDict& dict() const { return *dict_; }
  ValueDict& mutable_namespace() { return *dict_; }
  const std::shared_ptr<Function>& func() const { return func_; }
  // For undefined values: what was missing ("'x' is undefined").
  const std::string& undefined_hint() const { return *s_; }

  // Python truthiness (undefined is false).
  bool Truthy() const;
  // Dict/namespace lookup by string key; nullptr when absent.
  const Value* Find(std::string_view key) const;
  const Value* Find(const Value& key) const;

  // Python type name as Jinja's errors use it ("str", "dict", "list", ...).
  std::string TypeName() const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool is_tuple_ = false;
  bool b_ = false;
  int64_t i_ = 0;
  double f_ = 0;
  std::shared_ptr<const std::string> s_;
  std::shared_ptr<const ValueList> list_;
  std::shared_ptr<ValueDict> dict_;
  std::shared_ptr<Function> func_;
};

// Python ==, as Jinja evaluates it (1 == 1.0, True == 1, deep for containers).
bool Equal(const Value& a, const Value& b);
// Python's str(): what {{ value }} prints (undefined prints nothing).
std::string ToStr(const Value& v);
// Python's repr() (used inside containers).
std::string Repr(const Value& v);
// Python's repr() of a float ("1.0", "1e-05", "inf").
std::string FloatRepr(double f);

// Options of Python's json.dumps as transformers' tojson filter exposes them
// (ensure_ascii=False by default).
struct JsonDumpOptions {
  int indent = -1;  // -1: None (single line)
  bool sort_keys = false;
  bool ensure_ascii = false;
  std::string item_separator;  // empty: Python's default for the indent
  std::string key_separator;
  bool custom_separators = false;
};
Result<std::string> JsonDumps(const Value& v, const JsonDumpOptions& opts);

// UTF-8 helpers with Python semantics (code points).
std::vector<std::string_view> SplitCodePoints(std::string_view s);
size_t CodePointCount(std::string_view s);

}  // namespace formiga::jinja
