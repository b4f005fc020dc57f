#include "tokenizer/jinja_eval.h"

#include <cmath>
#include <limits>

#include "tokenizer/jinja_builtins.h"

namespace formiga::jinja {

namespace {

// A {% macro %}: binds arguments to parameters and renders its body.
class MacroFunction : public Function {
 public:
  explicit MacroFunction(const Stmt* def) : def_(def) {}
  std::string_view name() const override { return def_->text; }
  Result<Value> Call(Interpreter& interp, CallArgs& args, SourceLoc loc) override {
    const auto& params = def_->params;
    if (args.positional.size() > params.size()) {
      return interp.Error(loc, "macro '" + def_->text + "' takes " + std::to_string(params.size()) +
                                   " arguments but " + std::to_string(args.positional.size()) + " were given");
    }
    ValueDict locals;
    std::vector<bool> bound(params.size(), false);
    for (size_t i = 0; i < args.positional.size(); ++i) {
      locals.emplace_back(Value::String(params[i].name), args.positional[i]);
      bound[i] = true;
    }
    for (auto& [k, v] : args.keyword) {
      size_t i = 0;
      while (i < params.size() && params[i].name != k) ++i;
      if (i == params.size()) return interp.Error(loc, "macro '" + def_->text + "' has no argument named '" + k + "'");
      if (bound[i]) return interp.Error(loc, "macro '" + def_->text + "' got argument '" + k + "' twice");
      locals.emplace_back(Value::String(k), v);
      bound[i] = true;
    }
    for (size_t i = 0; i < params.size(); ++i) {
      if (!bound[i]) locals.emplace_back(Value::String(params[i].name), Value::Undefined());  // default filled below
    }
    FORMIGA_ASSIGN_OR_RETURN(std::string out, interp.RunMacro(*def_, std::move(locals), loc));
    return Value::String(std::move(out));
  }

 private:
  const Stmt* def_;
};

// loop.cycle(a, b, ...): the argument at index0 modulo the count.
class CycleFunction : public Function {
 public:
  explicit CycleFunction(size_t index0) : index0_(index0) {}
  std::string_view name() const override { return "cycle"; }
  Result<Value> Call(Interpreter& interp, CallArgs& args, SourceLoc loc) override {
    if (args.positional.empty()) return interp.Error(loc, "loop.cycle() needs at least one argument");
    return args.positional[index0_ % args.positional.size()];
  }

 private:
  size_t index0_;
};

bool CheckedMul(int64_t a, int64_t b, int64_t* out) { return !__builtin_mul_overflow(a, b, out); }

}  // namespace

Status Interpreter::Error(SourceLoc loc, const std::string& msg) const {
  return Status::InvalidArgument("chat template error at " + FormatLoc(loc.line, loc.col) + ": " + msg);
}

Status Interpreter::UndefinedError(SourceLoc loc, const Value& undef) const {
  const std::string& hint = undef.is_undefined() ? undef.undefined_hint() : std::string();
  return Error(loc, hint.empty() ? std::string("value is undefined") : hint);
}

Status Interpreter::Charge(int64_t units, SourceLoc loc) {
  work_ += units;
  if (work_ > limits_.max_work) {
    return Status::OutOfRange("chat template exceeded its work limit (" + std::to_string(limits_.max_work) +
                              " units) at " + FormatLoc(loc.line, loc.col) + "; the template is too expensive");
  }
  return Status::Ok();
}

Status Interpreter::CheckStringSize(size_t bytes, SourceLoc loc) const {
  if (bytes > limits_.max_output_bytes) {
    return Status::OutOfRange("chat template built a string of " + std::to_string(bytes) + " bytes at " +
                              FormatLoc(loc.line, loc.col) + "; the limit is " +
                              std::to_string(limits_.max_output_bytes));
  }
  return Status::Ok();
}

Status Interpreter::CheckListSize(size_t items, SourceLoc loc) const {
  if (items > limits_.max_list_items) {
    return Status::OutOfRange("chat template built a list of " + std::to_string(items) + " items at " +
                              FormatLoc(loc.line, loc.col) + "; the limit is " +
                              std::to_string(limits_.max_list_items));
  }
  return Status::Ok();
}

Status Interpreter::CountLoopIteration(SourceLoc loc) {
  if (++iterations_ > limits_.max_loop_iterations) {
    return Status::OutOfRange("chat template ran more than " + std::to_string(limits_.max_loop_iterations) +
                              " loop iterations (at " + FormatLoc(loc.line, loc.col) + ")");
  }
  return Status::Ok();
}

Status Interpreter::Append(std::string* out, std::string_view text, SourceLoc loc) const {
  FORMIGA_RETURN_IF_ERROR(CheckStringSize(out->size() + text.size(), loc));
  out->append(text);
  return Status::Ok();
}

const Value* Interpreter::Lookup(const std::string& name) const {
  size_t low = barriers_.empty() ? 0 : barriers_.back();
  for (size_t f = frames_.size(); f-- > low;) {
    for (auto it = frames_[f].rbegin(); it != frames_[f].rend(); ++it) {
      if (it->first == name) return &it->second;
    }
  }
  if (low > 0) {
    for (auto it = frames_[0].rbegin(); it != frames_[0].rend(); ++it) {
      if (it->first == name) return &it->second;
    }
  }
  return nullptr;
}

void Interpreter::SetLocal(const std::string& name, Value v) {
  Frame& f = frames_.back();
  for (auto& [k, val] : f) {
    if (k == name) {
      val = std::move(v);
      return;
    }
  }
  f.emplace_back(name, std::move(v));
}

Result<std::string> Interpreter::Render(const Template& tmpl, ValueDict globals) {
  frames_.clear();
  barriers_.clear();
  frames_.emplace_back();
  for (auto& [k, v] : globals) frames_[0].emplace_back(k.str(), std::move(v));
  std::string out;
  FORMIGA_RETURN_IF_ERROR(Exec(tmpl.body, &out));
  return out;
}

Result<std::string> Interpreter::RunMacro(const Stmt& macro, ValueDict locals, SourceLoc call_loc) {
  if (call_depth_ >= limits_.max_call_depth) {
    return Status::OutOfRange("chat template nested macro calls deeper than " +
                              std::to_string(limits_.max_call_depth) + " at " +
                              FormatLoc(call_loc.line, call_loc.col));
  }
  ++call_depth_;
  barriers_.push_back(frames_.size());
  frames_.emplace_back();
  for (auto& [k, v] : locals) frames_.back().emplace_back(k.str(), std::move(v));
  // Defaults are evaluated inside the macro's frame, after the given arguments.
  Status st;
  for (const auto& p : macro.params) {
    Value* slot = nullptr;
    for (auto& [k, v] : frames_.back()) {
      if (k == p.name) slot = &v;
    }
    if (slot != nullptr && slot->is_undefined() && p.default_value) {
      auto r = Eval(*p.default_value);
      if (!r.ok()) {
        st = r.status();
        break;
      }
      for (auto& [k, v] : frames_.back()) {
        if (k == p.name) v = *r;
      }
    }
  }
  std::string out;
  int saved_loop_depth = loop_depth_;
  loop_depth_ = 0;
  if (st.ok()) st = Exec(macro.body, &out);
  loop_depth_ = saved_loop_depth;
  frames_.pop_back();
  barriers_.pop_back();
  --call_depth_;
  FORMIGA_RETURN_IF_ERROR(st);
  return out;
}

Status Interpreter::Exec(const StmtList& body, std::string* out) {
  for (const auto& s : body) {
    FORMIGA_RETURN_IF_ERROR(ExecOne(*s, out));
    if (flow_ != Flow::kNormal) return Status::Ok();
  }
  return Status::Ok();
}

Status Interpreter::Assign(const Target& t, const Value& v, SourceLoc loc) {
  if (!t.attr.empty()) {
    const Value* ns = Lookup(t.names[0]);
    if (ns == nullptr || !ns->is_namespace()) {
      return Error(loc, "cannot assign attribute '" + t.attr + "' on '" + t.names[0] +
                            "': only namespace() objects accept attribute assignment");
    }
    if (t.attr[0] == '_') {
      return Error(loc, "chat templates cannot store underscore-prefixed attributes on a namespace ('" + t.attr + "')");
    }
    Value copy = *ns;  // shares the namespace's storage
    ValueDict& d = copy.mutable_namespace();
    for (auto& [k, val] : d) {
      if (k.is_string() && k.str() == t.attr) {
        val = v;
        return Status::Ok();
      }
    }
    d.emplace_back(Value::String(t.attr), v);
    return Status::Ok();
  }
  if (!t.is_tuple) {
    SetLocal(t.names[0], v);
    return Status::Ok();
  }
  ValueList items;
  if (v.is_list()) {
    items = v.list();
  } else if (v.is_string()) {
    for (auto cp : SplitCodePoints(v.str())) items.push_back(Value::String(std::string(cp)));
  } else {
    return Error(loc, "cannot unpack a " + v.TypeName() + " into " + std::to_string(t.names.size()) + " names");
  }
  if (items.size() != t.names.size()) {
    return Error(loc, (items.size() > t.names.size() ? "too many" : "not enough") +
                          std::string(" values to unpack (expected ") + std::to_string(t.names.size()) + ", got " +
                          std::to_string(items.size()) + ")");
  }
  for (size_t i = 0; i < items.size(); ++i) SetLocal(t.names[i], items[i]);
  return Status::Ok();
}

Status Interpreter::ExecFor(const Stmt& s, std::string* out) {
  FORMIGA_ASSIGN_OR_RETURN(Value iterable, Eval(*s.expr));
  FORMIGA_ASSIGN_OR_RETURN(ValueList items, Iterate(iterable, s.expr->loc));
  frames_.emplace_back();
  ++loop_depth_;
  Status st;
  if (s.cond) {
    ValueList kept;
    for (const auto& item : items) {
      st = CountLoopIteration(s.loc);
      if (st.ok()) st = Assign(s.target, item, s.loc);
      if (!st.ok()) break;
      auto c = Eval(*s.cond);
      if (!c.ok()) {
        st = c.status();
        break;
      }
      if (c->Truthy()) kept.push_back(item);
    }
    items = std::move(kept);
  }
  const size_t n = items.size();
  for (size_t i = 0; st.ok() && i < n; ++i) {
    st = CountLoopIteration(s.loc);
    if (!st.ok()) break;
    st = Assign(s.target, items[i], s.loc);
    if (!st.ok()) break;
    auto len = static_cast<int64_t>(n);
    auto idx = static_cast<int64_t>(i);
    ValueDict loop = {
        {Value::String("index"), Value::Int(idx + 1)},
        {Value::String("index0"), Value::Int(idx)},
        {Value::String("revindex"), Value::Int(len - idx)},
        {Value::String("revindex0"), Value::Int(len - idx - 1)},
        {Value::String("first"), Value::Bool(i == 0)},
        {Value::String("last"), Value::Bool(i + 1 == n)},
        {Value::String("length"), Value::Int(len)},
        {Value::String("depth"), Value::Int(1)},
        {Value::String("depth0"), Value::Int(0)},
        {Value::String("previtem"), i > 0 ? items[i - 1] : Value::Undefined("there is no previous item")},
        {Value::String("nextitem"), i + 1 < n ? items[i + 1] : Value::Undefined("there is no next item")},
        {Value::String("cycle"), Value::Func(std::make_shared<CycleFunction>(i))},
    };
    SetLocal("loop", Value::Dict(std::move(loop)));
    st = Exec(s.bodies[0], out);
    if (flow_ == Flow::kBreak) {
      flow_ = Flow::kNormal;
      break;
    }
    flow_ = Flow::kNormal;
  }
  --loop_depth_;
  if (st.ok() && n == 0 && s.has_else) st = Exec(s.bodies[1], out);
  frames_.pop_back();
  return st;
}

Status Interpreter::ExecOne(const Stmt& s, std::string* out) {
  switch (s.kind) {
    case Stmt::Kind::kText: return Append(out, s.text, s.loc);
    case Stmt::Kind::kOutput: {
      FORMIGA_ASSIGN_OR_RETURN(Value v, Eval(*s.expr));
      if (v.is_string()) return Append(out, v.str(), s.loc);
      return Append(out, ToStr(v), s.loc);
    }
    case Stmt::Kind::kIf: {
      for (size_t i = 0; i < s.conditions.size(); ++i) {
        FORMIGA_ASSIGN_OR_RETURN(Value c, Eval(*s.conditions[i]));
        if (c.Truthy()) return Exec(s.bodies[i], out);
      }
      if (s.has_else) return Exec(s.bodies.back(), out);
      return Status::Ok();
    }
    case Stmt::Kind::kFor: return ExecFor(s, out);
    case Stmt::Kind::kSet: {
      FORMIGA_ASSIGN_OR_RETURN(Value v, Eval(*s.expr));
      return Assign(s.target, v, s.loc);
    }
    case Stmt::Kind::kSetBlock: {
      std::string captured;
      FORMIGA_RETURN_IF_ERROR(Exec(s.body, &captured));
      return Assign(s.target, Value::String(std::move(captured)), s.loc);
    }
    case Stmt::Kind::kMacro:
      SetLocal(s.text, Value::Func(std::make_shared<MacroFunction>(&s)));
      return Status::Ok();
    case Stmt::Kind::kBreak:
    case Stmt::Kind::kContinue:
      if (loop_depth_ == 0) {
        return Error(s.loc, std::string(s.kind == Stmt::Kind::kBreak ? "{% break %}" : "{% continue %}") +
                                " outside a for loop");
      }
      flow_ = s.kind == Stmt::Kind::kBreak ? Flow::kBreak : Flow::kContinue;
      return Status::Ok();
    case Stmt::Kind::kGeneration: return Exec(s.body, out);
    case Stmt::Kind::kFilterBlock: {
      std::string captured;
      FORMIGA_RETURN_IF_ERROR(Exec(s.body, &captured));
      FORMIGA_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(*s.expr, 1));
      FORMIGA_ASSIGN_OR_RETURN(Value v, ApplyFilter(s.expr->name, Value::String(std::move(captured)), args, s.loc));
      return Append(out, ToStr(v), s.loc);
    }
  }
  return Status::Internal("unknown statement kind");
}

Result<CallArgs> Interpreter::EvalArgs(const Expr& e, size_t first_arg) {
  CallArgs args;
  const size_t n_kw = e.kwarg_names.size();
  const size_t n = e.children.size();
  for (size_t i = first_arg; i < n; ++i) {
    FORMIGA_ASSIGN_OR_RETURN(Value v, Eval(*e.children[i]));
    if (i + n_kw >= n) {
      args.keyword.emplace_back(e.kwarg_names[i + n_kw - n], std::move(v));
    } else {
      args.positional.push_back(std::move(v));
    }
  }
  return args;
}

Result<Value> Interpreter::Call(const Value& callee, CallArgs& args, SourceLoc loc) {
  if (callee.is_function()) return callee.func()->Call(*this, args, loc);
  if (callee.is_undefined()) return UndefinedError(loc, callee);
  return Error(loc, "'" + callee.TypeName() + "' object is not callable");
}

Result<bool> Interpreter::Compare(const std::string& op, const Value& a, const Value& b, SourceLoc loc) {
  if (op == "==") return Equal(a, b);
  if (op == "!=") return !Equal(a, b);
  if (op == "in" || op == "notin") {
    bool found = false;
    if (b.is_string()) {
      if (!a.is_string()) {
        if (a.is_undefined()) return UndefinedError(loc, a);
        return Error(loc, "'in <string>' requires a string as left operand, not " + a.TypeName());
      }
      found = b.str().find(a.str()) != std::string::npos;
    } else if (b.is_list()) {
      for (const auto& x : b.list()) {
        if (Equal(a, x)) {
          found = true;
          break;
        }
      }
    } else if (b.is_dict()) {
      found = b.Find(a) != nullptr;
    } else if (b.is_undefined()) {
      found = false;  // Undefined iterates as empty
    } else {
      return Error(loc, "argument of type '" + b.TypeName() + "' is not iterable");
    }
    return op == "in" ? found : !found;
  }
  // Ordering comparisons.
  if (a.is_undefined()) return UndefinedError(loc, a);
  if (b.is_undefined()) return UndefinedError(loc, b);
  int c = 0;
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) {
      double x = a.as_double(), y = b.as_double();
      if (std::isnan(x) || std::isnan(y)) return false;
      c = x < y ? -1 : x > y ? 1 : 0;
    } else {
      c = a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int() ? 1 : 0;
    }
  } else if (a.is_string() && b.is_string()) {
    int r = a.str().compare(b.str());
    c = r < 0 ? -1 : r > 0 ? 1 : 0;
  } else if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    const auto& x = a.list();
    const auto& y = b.list();
    size_t i = 0;
    while (i < x.size() && i < y.size() && Equal(x[i], y[i])) ++i;
    if (i < x.size() && i < y.size()) {
      FORMIGA_ASSIGN_OR_RETURN(bool lt, Compare("<", x[i], y[i], loc));
      c = lt ? -1 : 1;
    } else {
      c = x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
    }
  } else {
    return Error(loc, "'" + op + "' not supported between instances of '" + a.TypeName() + "' and '" +
                          b.TypeName() + "'");
  }
  if (op == "<") return c < 0;
  if (op == "<=") return c <= 0;
  if (op == ">") return c > 0;
  return c >= 0;
}

Result<Value> Interpreter::BinaryOp(const std::string& op, const Value& a, const Value& b, SourceLoc loc) {
  if (op == "~") {
    std::string s = ToStr(a);
    std::string t = ToStr(b);
    FORMIGA_RETURN_IF_ERROR(CheckStringSize(s.size() + t.size(), loc));
    FORMIGA_RETURN_IF_ERROR(Charge(static_cast<int64_t>(s.size() + t.size()), loc));
    return Value::String(s + t);
  }
  if (a.is_undefined()) return UndefinedError(loc, a);
  if (b.is_undefined()) return UndefinedError(loc, b);
  auto type_error = [&]() {
    return Error(loc, "unsupported operand type(s) for " + op + ": '" + a.TypeName() + "' and '" + b.TypeName() +
                          "'");
  };
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      FORMIGA_RETURN_IF_ERROR(CheckStringSize(a.str().size() + b.str().size(), loc));
      FORMIGA_RETURN_IF_ERROR(Charge(static_cast<int64_t>(a.str().size() + b.str().size()), loc));
      return Value::String(a.str() + b.str());
    }
    if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
      FORMIGA_RETURN_IF_ERROR(CheckListSize(a.list().size() + b.list().size(), loc));
      FORMIGA_RETURN_IF_ERROR(Charge(static_cast<int64_t>(a.list().size() + b.list().size()), loc));
      ValueList items = a.list();
      items.insert(items.end(), b.list().begin(), b.list().end());
      return Value::List(std::move(items), a.is_tuple());
    }
  }
  if (op == "*") {
    const Value* seq = (a.is_string() || a.is_list()) ? &a : (b.is_string() || b.is_list()) ? &b : nullptr;
    const Value* count = seq == &a ? &b : &a;
    if (seq != nullptr && (count->is_int() || count->is_bool())) {
      int64_t k = std::max<int64_t>(0, count->as_int());
      if (seq->is_string()) {
        int64_t total = 0;
        if (!CheckedMul(static_cast<int64_t>(seq->str().size()), k, &total)) total = INT64_MAX;
        FORMIGA_RETURN_IF_ERROR(CheckStringSize(static_cast<size_t>(total), loc));
        FORMIGA_RETURN_IF_ERROR(Charge(total, loc));
        std::string out;
        out.reserve(static_cast<size_t>(total));
        for (int64_t i = 0; i < k; ++i) out += seq->str();
        return Value::String(std::move(out));
      }
      int64_t total = 0;
      if (!CheckedMul(static_cast<int64_t>(seq->list().size()), k, &total)) total = INT64_MAX;
      FORMIGA_RETURN_IF_ERROR(CheckListSize(static_cast<size_t>(total), loc));
      FORMIGA_RETURN_IF_ERROR(Charge(total, loc));
      ValueList items;
      for (int64_t i = 0; i < k; ++i) items.insert(items.end(), seq->list().begin(), seq->list().end());
      return Value::List(std::move(items), seq->is_tuple());
    }
  }
  if (!a.is_number() || !b.is_number()) {
    if (op == "%" && a.is_string()) {
      return Error(loc, "printf-style string formatting ('%') is not supported by formiga's Jinja subset");
    }
    return type_error();
  }
  const bool ints = !a.is_float() && !b.is_float();
  if (ints) {
    int64_t x = a.as_int(), y = b.as_int(), r = 0;
    bool ok = true;
    if (op == "+") ok = !__builtin_add_overflow(x, y, &r);
    else if (op == "-") ok = !__builtin_sub_overflow(x, y, &r);
    else if (op == "*") ok = !__builtin_mul_overflow(x, y, &r);
    else if (op == "/") {
      if (y == 0) return Error(loc, "division by zero");
      return Value::Float(static_cast<double>(x) / static_cast<double>(y));
    } else if (op == "//" || op == "%") {
      if (y == 0) return Error(loc, op == "//" ? "integer division by zero" : "integer modulo by zero");
      if (x == INT64_MIN && y == -1) return Error(loc, "integer overflow");
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {
        q -= 1;
        m += y;
      }
      r = op == "//" ? q : m;
    } else if (op == "**") {
      if (y < 0) return Value::Float(std::pow(static_cast<double>(x), static_cast<double>(y)));
      r = 1;
      for (int64_t i = 0; i < y && ok; ++i) {
        ok = !__builtin_mul_overflow(r, x, &r);
        if (r == 0 || r == 1) break;  // 0**n and 1**n are stable
      }
      if (x == -1) r = (y % 2 == 0) ? 1 : -1;
    }
    if (!ok) return Error(loc, "integer overflow in '" + op + "' (formiga's integers are 64-bit)");
    return Value::Int(r);
  }
  double x = a.as_double(), y = b.as_double();
  if (op == "+") return Value::Float(x + y);
  if (op == "-") return Value::Float(x - y);
  if (op == "*") return Value::Float(x * y);
  if (op == "/") {
    if (y == 0) return Error(loc, "float division by zero");
    return Value::Float(x / y);
  }
  if (op == "//" || op == "%") {
    if (y == 0) return Error(loc, "float modulo by zero");
    double m = std::fmod(x, y);
    if (m != 0 && ((m < 0) != (y < 0))) m += y;
    if (op == "%") return Value::Float(m);
    return Value::Float(std::floor(x / y));
  }
  if (op == "**") return Value::Float(std::pow(x, y));
  return type_error();
}

Result<Value> Interpreter::Eval(const Expr& e) {
  FORMIGA_RETURN_IF_ERROR(Charge(1, e.loc));
  using K = Expr::Kind;
  switch (e.kind) {
    case K::kLiteral: return e.value;
    case K::kName: {
      if (const Value* v = Lookup(e.name)) return *v;
      if (const Value* g = FindGlobal(e.name)) return *g;
      return Value::Undefined("'" + e.name + "' is undefined");
    }
    case K::kGetAttr: {
      FORMIGA_ASSIGN_OR_RETURN(Value obj, Eval(*e.children[0]));
      return GetAttr(obj, e.name, e.loc);
    }
    case K::kGetItem: {
      FORMIGA_ASSIGN_OR_RETURN(Value obj, Eval(*e.children[0]));
      FORMIGA_ASSIGN_OR_RETURN(Value key, Eval(*e.children[1]));
      return GetItem(obj, key, e.loc);
    }
    case K::kSlice: {
      FORMIGA_ASSIGN_OR_RETURN(Value obj, Eval(*e.children[0]));
      Value parts[3];
      for (int i = 0; i < 3; ++i) {
        if (e.children[static_cast<size_t>(i) + 1]) {
          FORMIGA_ASSIGN_OR_RETURN(parts[i], Eval(*e.children[static_cast<size_t>(i) + 1]));
        } else {
          parts[i] = Value::None();
        }
      }
      return SliceValue(*this, obj, parts[0], parts[1], parts[2], e.loc);
    }
    case K::kCall: {
      FORMIGA_ASSIGN_OR_RETURN(Value callee, Eval(*e.children[0]));
      FORMIGA_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(e, 1));
      return Call(callee, args, e.loc);
    }
    case K::kFilter: {
      FORMIGA_ASSIGN_OR_RETURN(Value v, Eval(*e.children[0]));
      FORMIGA_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(e, 1));
      return ApplyFilter(e.name, v, args, e.loc);
    }
    case K::kTest: {
      FORMIGA_ASSIGN_OR_RETURN(Value v, Eval(*e.children[0]));
      FORMIGA_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(e, 1));
      FORMIGA_ASSIGN_OR_RETURN(bool r, ApplyTest(e.name, v, args, e.loc));
      return Value::Bool(r != e.negated);
    }
    case K::kNeg:
    case K::kPos: {
      FORMIGA_ASSIGN_OR_RETURN(Value v, Eval(*e.children[0]));
      if (v.is_undefined()) return UndefinedError(e.loc, v);
      if (!v.is_number()) {
        return Error(e.loc, std::string("bad operand type for unary ") + (e.kind == K::kNeg ? "-" : "+") + ": '" +
                                v.TypeName() + "'");
      }
      if (e.kind == K::kPos) return v.is_bool() ? Value::Int(v.as_int()) : v;
      if (v.is_float()) return Value::Float(-v.as_float());
      if (v.as_int() == INT64_MIN) return Error(e.loc, "integer overflow");
      return Value::Int(-v.as_int());
    }
    case K::kNot: {
      FORMIGA_ASSIGN_OR_RETURN(Value v, Eval(*e.children[0]));
      return Value::Bool(!v.Truthy());
    }
    case K::kBinary: {
      FORMIGA_ASSIGN_OR_RETURN(Value a, Eval(*e.children[0]));
      FORMIGA_ASSIGN_OR_RETURN(Value b, Eval(*e.children[1]));
      return BinaryOp(e.name, a, b, e.loc);
    }
    case K::kAnd: {
      FORMIGA_ASSIGN_OR_RETURN(Value a, Eval(*e.children[0]));
      if (!a.Truthy()) return a;
      return Eval(*e.children[1]);
    }
    case K::kOr: {
      FORMIGA_ASSIGN_OR_RETURN(Value a, Eval(*e.children[0]));
      if (a.Truthy()) return a;
      return Eval(*e.children[1]);
    }
    case K::kCompare: {
      FORMIGA_ASSIGN_OR_RETURN(Value left, Eval(*e.children[0]));
      for (size_t i = 0; i < e.ops.size(); ++i) {
        FORMIGA_ASSIGN_OR_RETURN(Value right, Eval(*e.children[i + 1]));
        FORMIGA_ASSIGN_OR_RETURN(bool ok, Compare(e.ops[i], left, right, e.loc));
        if (!ok) return Value::Bool(false);
        left = std::move(right);
      }
      return Value::Bool(true);
    }
    case K::kCond: {
      FORMIGA_ASSIGN_OR_RETURN(Value c, Eval(*e.children[1]));
      if (c.Truthy()) return Eval(*e.children[0]);
      if (e.children[2]) return Eval(*e.children[2]);
      return Value::Undefined("the inline if expression had no else branch");
    }
    case K::kList:
    case K::kTuple: {
      ValueList items;
      for (const auto& c : e.children) {
        FORMIGA_ASSIGN_OR_RETURN(Value v, Eval(*c));
        items.push_back(std::move(v));
      }
      return Value::List(std::move(items), e.kind == K::kTuple);
    }
    case K::kDict: {
      ValueDict items;
      for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
        FORMIGA_ASSIGN_OR_RETURN(Value k, Eval(*e.children[i]));
        FORMIGA_ASSIGN_OR_RETURN(Value v, Eval(*e.children[i + 1]));
        if (k.is_list() && !k.is_tuple()) return Error(e.loc, "unhashable type: 'list'");
        if (k.is_dict() || k.is_undefined()) return Error(e.loc, "unhashable type: '" + k.TypeName() + "'");
        bool replaced = false;
        for (auto& [ek, ev] : items) {
          if (Equal(ek, k)) {
            ev = v;
            replaced = true;
          }
        }
        if (!replaced) items.emplace_back(std::move(k), std::move(v));
      }
      return Value::Dict(std::move(items));
    }
  }
  return Status::Internal("unknown expression kind");
}

}  // namespace formiga::jinja
