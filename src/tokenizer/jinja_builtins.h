// Builtins of the chat-template interpreter: global functions, attribute and
// item access (including the str/dict/list methods templates call), slicing,
// filters and tests. Internal to src/tokenizer (jinja_eval.cc uses it).
//
// Thread safety: the global table is immutable after first use.
// Ownership: returned pointers refer to static storage.
#pragma once

#include <string>
#include <string_view>

#include "tokenizer/jinja_eval.h"
#include "tokenizer/jinja_value.h"

namespace formiga::jinja {

// Globals every chat template sees (transformers' environment): range,
// namespace, dict, raise_exception, strftime_now. nullptr when unknown.
const Value* FindGlobal(const std::string& name);

// Whether ApplyFilter/ApplyTest implement `name`. The parser rejects unknown
// names up front, like Jinja does when it compiles a template.
bool IsSupportedFilter(std::string_view name);
bool IsSupportedTest(std::string_view name);

// Python slicing obj[start:stop:step] on str/list/tuple (None = omitted).
Result<Value> SliceValue(Interpreter& interp, const Value& obj, const Value& start, const Value& stop,
                         const Value& step, SourceLoc loc);

// Python str.strip() whitespace (Unicode White_Space plus \x1c-\x1f).
bool IsPyWhitespace(uint32_t cp);
std::string PyStrip(const std::string& s, bool left, bool right, const std::string* chars);

// Text case helpers with Python semantics for ASCII and Latin-1 letters.
std::string PyUpper(const std::string& s);
std::string PyLower(const std::string& s);

}  // namespace formiga::jinja
