// Parser for the Jinja subset used by chat templates: tokens -> AST.
//
// Statements: text, {{ expr }}, if/elif/else, for (tuple targets, inline
// `if` filter, else, loop.*), set (names, tuples, namespace attributes,
// block set), macro (+ calls), break/continue (loopcontrols), raw,
// filter blocks and transformers' generation block. Everything else
// (include, extends, import, block, call, with, ...) is rejected at parse
// time with an Unsupported status naming the tag and its line/column.
//
// Thread safety: a parsed Template is immutable and may be rendered from
// several threads at once. Ownership: the Template owns all nodes.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "tokenizer/jinja_lexer.h"
#include "tokenizer/jinja_value.h"

namespace formiga::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtList = std::vector<std::unique_ptr<Stmt>>;

struct Expr {
  enum class Kind {
    kLiteral,   // value
    kName,      // name
    kGetAttr,   // a.name           children[0]=a
    kGetItem,   // a[b]             children = {a, b}
    kSlice,     // a[b:c:d]         children = {a, b|null, c|null, d|null}
    kCall,      // f(args, k=v)     children = {f, args...}; kwarg_names aligns with the tail
    kFilter,    // a | name(args)   children = {a, args...}
    kTest,      // a is [not] name(args)  children = {a, args...}; negated
    kNeg,       // -a
    kPos,       // +a
    kNot,       // not a
    kBinary,    // op in name: + - * / // % ** ~
    kAnd,
    kOr,
    kCompare,   // children[0] op1 children[1] op2 children[2] ...; ops in `ops`
    kCond,      // children = {then, cond, else|null}
    kList,
    kTuple,
    kDict,      // children = k0, v0, k1, v1, ...
  };
  Kind kind = Kind::kLiteral;
  SourceLoc loc;
  std::string name;  // name / attribute / filter / test / operator
  Value value;       // literal
  bool negated = false;
  std::vector<ExprPtr> children;
  std::vector<std::string> kwarg_names;  // kCall/kFilter/kTest: names of the last N children
  std::vector<std::string> ops;          // kCompare
};

// Assignment target: a name, a namespace attribute (ns.x) or a tuple of names.
struct Target {
  std::vector<std::string> names;  // one name, or several for tuple unpacking
  std::string attr;                // set when the target is names[0].attr
  bool is_tuple = false;
};

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // may be null
};

struct Stmt {
  enum class Kind { kText, kOutput, kIf, kFor, kSet, kSetBlock, kMacro, kBreak, kContinue, kGeneration, kFilterBlock };
  Kind kind = Kind::kText;
  SourceLoc loc;
  std::string text;                 // kText; kMacro name
  ExprPtr expr;                     // kOutput; kSet value; kFor iterable; kFilterBlock filter (children[0] unused)
  ExprPtr cond;                     // kFor inline filter
  std::vector<ExprPtr> conditions;  // kIf: one per branch (if + elifs)
  std::vector<StmtList> bodies;     // kIf: one per branch, plus else when has_else; kFor: {body, else}
  bool has_else = false;
  Target target;                    // kSet, kSetBlock, kFor
  std::vector<MacroParam> params;   // kMacro
  StmtList body;                    // kMacro, kSetBlock, kGeneration, kFilterBlock
  bool recursive = false;           // kFor (rejected at parse time; kept for messages)
};

struct Template {
  StmtList body;
};

// Limits on what the parser accepts (hostile templates).
inline constexpr int kMaxNesting = 200;  // nested blocks + expression depth

Result<std::shared_ptr<const Template>> Parse(std::string_view source);

}  // namespace formiga::jinja
