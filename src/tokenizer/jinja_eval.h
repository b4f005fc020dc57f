// Interpreter for parsed chat templates (see jinja_parser.h).
//
// Evaluates the AST with Jinja's semantics as configured by transformers
// (ImmutableSandboxedEnvironment: lists and dicts cannot be mutated; default
// Undefined: printing it gives "", using it in arithmetic or attribute access
// is an error). Errors carry the template line/column.
//
// Limits (RenderLimits) bound output size, loop iterations, macro recursion
// and total work so that a hostile template cannot hang or exhaust memory.
//
// Thread safety: one Interpreter per render; not shareable across threads.
// Ownership: borrows the Template for the duration of Render().
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "tokenizer/jinja_parser.h"
#include "tokenizer/jinja_value.h"

namespace formiga::jinja {

struct RenderLimits {
  // Bytes in any rendered string (the prompt, a block set, a string value).
  // Default 8 MiB: far above any real prompt, small enough to never OOM.
  size_t max_output_bytes = 8u << 20;
  // Elements in any list value (range(), list repetition, ...).
  size_t max_list_items = 1u << 20;
  // Loop iterations over the whole render.
  int64_t max_loop_iterations = 1'000'000;
  // Nested macro calls.
  int max_call_depth = 64;
  // Work units over the whole render (one per node evaluated plus the size of
  // every string or list built); bounds CPU time for hostile templates.
  int64_t max_work = 200'000'000;
};

class Interpreter {
 public:
  explicit Interpreter(RenderLimits limits) : limits_(limits) {}

  // Renders `tmpl` with `globals` (the template's context) visible.
  Result<std::string> Render(const Template& tmpl, ValueDict globals);

  // ---- used by builtins (jinja_filters.cc) and macros ----
  Status Error(SourceLoc loc, const std::string& msg) const;
  Status UndefinedError(SourceLoc loc, const Value& undef) const;
  // Charges `units` of work and fails when the budget is spent.
  Status Charge(int64_t units, SourceLoc loc);
  Status CheckStringSize(size_t bytes, SourceLoc loc) const;
  Status CheckListSize(size_t items, SourceLoc loc) const;
  Status CountLoopIteration(SourceLoc loc);

  Result<Value> Call(const Value& callee, CallArgs& args, SourceLoc loc);
  Result<Value> GetAttr(const Value& obj, const std::string& name, SourceLoc loc);
  Result<Value> GetItem(const Value& obj, const Value& key, SourceLoc loc);
  Result<Value> ApplyFilter(const std::string& name, const Value& v, CallArgs& args, SourceLoc loc);
  Result<bool> ApplyTest(const std::string& name, const Value& v, CallArgs& args, SourceLoc loc);
  // Values of an iterable (list items, dict keys, string characters).
  Result<ValueList> Iterate(const Value& v, SourceLoc loc);
  Result<Value> BinaryOp(const std::string& op, const Value& a, const Value& b, SourceLoc loc);
  Result<bool> Compare(const std::string& op, const Value& a, const Value& b, SourceLoc loc);

  // Clock for strftime_now(): seconds since the epoch, or -1 for the system clock.
  int64_t now_unix() const { return now_unix_; }
  void set_now_unix(int64_t t) { now_unix_ = t; }

  // Runs a macro body with `locals` bound; returns its output.
  Result<std::string> RunMacro(const Stmt& macro, ValueDict locals, SourceLoc call_loc);

 private:
  using Frame = std::vector<std::pair<std::string, Value>>;
  enum class Flow { kNormal, kBreak, kContinue };

  Result<Value> Eval(const Expr& e);
  Status Exec(const StmtList& body, std::string* out);
  Status ExecOne(const Stmt& s, std::string* out);
  Status ExecFor(const Stmt& s, std::string* out);
  Status Assign(const Target& t, const Value& v, SourceLoc loc);
  Status Append(std::string* out, std::string_view text, SourceLoc loc) const;
  Result<CallArgs> EvalArgs(const Expr& e, size_t first_arg);

  const Value* Lookup(const std::string& name) const;
  void SetLocal(const std::string& name, Value v);

  RenderLimits limits_;
  std::vector<Frame> frames_;
  // Index of the lowest frame visible from the current one (macros see the
  // template's root frame plus their own frames).
  std::vector<size_t> barriers_;
  Flow flow_ = Flow::kNormal;
  int loop_depth_ = 0;
  int call_depth_ = 0;
  int64_t iterations_ = 0;
  int64_t work_ = 0;
  int64_t now_unix_ = -1;
};

}  // namespace formiga::jinja
