// Status and Result<T>: errors are values.
//
// Library code never exits or prints; it returns a Status that says what went
// wrong, where, and (when there is one) what to do about it. Only cli/ talks
// to the terminal.
//
// Thread safety: immutable values, safe to share once built.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace formiga {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument,   // the caller (or the user) asked for something invalid
  kNotFound,          // a file, key, tensor or model that does not exist
  kCorruption,        // a file whose bytes contradict its format
  kIOError,           // the OS refused (open, read, write, mmap)
  kUnsupported,       // valid, but formiga does not implement it (yet)
  kOutOfRange,        // a limit was exceeded (context, sizes)
  kResourceExhausted, // not enough memory / blocks
  kInternal,          // a bug in formiga
  kCancelled,         // stopped on request (Ctrl-C, client gone)
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status IOError(std::string m) { return {StatusCode::kIOError, std::move(m)}; }
  static Status Unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
  static Status OutOfRange(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
  static Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  bool IsNotFound() const { return code_ == StatusCode::kNotFound; }
  bool IsCorruption() const { return code_ == StatusCode::kCorruption; }
  bool IsInvalidArgument() const { return code_ == StatusCode::kInvalidArgument; }
  bool IsUnsupported() const { return code_ == StatusCode::kUnsupported; }

  // "corruption: model.gguf: offset 24: ..." — for logs and the CLI.
  std::string ToString() const;

  // Returns a copy whose message is "prefix: message" (adds context on the way up).
  Status WithContext(std::string_view prefix) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Result<T>: a T or an error Status (never an OK status without a value).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "Result built from an OK status");
    if (std::get<Status>(v_).ok()) v_ = Status::Internal("Result built from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

  // REQUIRES: ok()
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace formiga

#define FORMIGA_CONCAT_INNER_(a, b) a##b
#define FORMIGA_CONCAT_(a, b) FORMIGA_CONCAT_INNER_(a, b)

// Returns the Status from the enclosing function if `expr` is not OK.
#define FORMIGA_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::formiga::Status formiga_status_ = (expr);        \
    if (!formiga_status_.ok()) return formiga_status_; \
  } while (0)

// `lhs` = value of the Result `expr`, or return its Status.
#define FORMIGA_ASSIGN_OR_RETURN(lhs, expr) \
  FORMIGA_ASSIGN_OR_RETURN_IMPL_(FORMIGA_CONCAT_(formiga_result_, __LINE__), lhs, expr)
#define FORMIGA_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()
