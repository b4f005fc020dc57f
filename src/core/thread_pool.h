// ThreadPool: persistent worker threads for data-parallel kernels.
//
// Run(n_tasks, fn) calls fn(task, thread) once for every task in [0, n_tasks)
// across the pool's threads (the calling thread is thread 0 and works too) and
// returns when all tasks are done. Tasks are claimed from a shared counter, so
// WHICH thread runs a task depends on timing; results do not, as long as each
// task writes its own outputs and computes them the same way whichever thread
// runs it (the kernels' contract: partition outputs by task, never by thread;
// `thread` only selects per-thread scratch memory).
//
// Dispatch latency: idle workers spin on a generation counter for a short
// while (~tens of microseconds) after each job, so back-to-back ops of a
// decode step start without a syscall; after that they block on a futex
// (std::atomic::wait) so an idle engine burns no CPU.
//
// Thread safety: Run may be called by one thread at a time (it is not
// reentrant: fn must not call Run on the same pool). Ownership: the pool owns
// its threads and joins them in the destructor.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace formiga {

// A non-owning reference to a callable void(int64_t task, int thread): no
// allocation, valid only during the call it is passed to.
class TaskFn {
 public:
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, TaskFn>>>
  TaskFn(F&& f)  // NOLINT: implicit by design, like std::function
      : obj_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* o, int64_t task, int thread) { (*static_cast<std::remove_reference_t<F>*>(o))(task, thread); }) {}
  void operator()(int64_t task, int thread) const { call_(obj_, task, thread); }

 private:
  void* obj_;
  void (*call_)(void*, int64_t, int);
};

class ThreadPool {
 public:
  // n_threads <= 0: one per hardware thread. The pool starts n_threads - 1
  // workers (the caller of Run is the n-th).
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const { return n_threads_; }

  // Runs fn(task, thread) for task in [0, n_tasks); thread in [0, n_threads()).
  // n_tasks == 1 (or a one-thread pool) runs inline on the caller.
  void Run(int64_t n_tasks, TaskFn fn);

  // Hardware threads of this machine (at least 1).
  static int HardwareThreads();

 private:
  void WorkerLoop(int thread, uint32_t seen);
  void Work(int thread);

  int n_threads_ = 1;
  std::vector<std::thread> workers_;
  // Job description, published by the release store of generation_.
  const TaskFn* job_ = nullptr;
  int64_t n_tasks_ = 0;
  std::atomic<int64_t> next_task_{0};
  std::atomic<uint32_t> generation_{0};  // bumped once per Run
  std::atomic<int> busy_{0};             // workers still inside the current job
  std::atomic<bool> stop_{false};
};

}  // namespace formiga
