#include "runtime/engine_service.h"

#include <string>
#include <utility>

namespace formiga {

std::unique_ptr<EngineService> EngineService::Start(Engine& engine, EngineServiceOptions options) {
  std::unique_ptr<EngineService> service(new EngineService(engine, options));
  service->RefreshSnapshot();
  EngineService* s = service.get();
  s->thread_ = std::thread([s] { s->Loop(); });
  s->thread_id_ = s->thread_.get_id();
  return service;
}

EngineService::EngineService(Engine& engine, EngineServiceOptions options)
    : engine_(engine), options_(options) {}

EngineService::~EngineService() {
  Shutdown(/*cancel_in_flight=*/true);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<int64_t> EngineService::Submit(GenerationRequest request) {
  auto pending = std::make_unique<Pending>();
  pending->request = std::move(request);
  std::future<Result<int64_t>> accepted = pending->accepted.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!accepting_) return Status::Cancelled("the server is shutting down; retry on another replica");
    const int64_t queued = snapshot_.waiting + static_cast<int64_t>(inbox_.size());
    if (queued >= options_.max_queued) {
      return Status::ResourceExhausted("the request queue is full (" + std::to_string(options_.max_queued) +
                                       " waiting); retry later");
    }
    inbox_.push_back(std::move(pending));
  }
  wake_.notify_all();
  // NOTE: a callback (engine thread) must never Submit: it would wait for
  // itself. Refuse instead of deadlocking.
  if (std::this_thread::get_id() == thread_id_) {
    return Status::Internal("EngineService::Submit called from the engine thread");
  }
  return accepted.get();
}

void EngineService::Cancel(int64_t request_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancels_.push_back(request_id);
  }
  wake_.notify_all();
}

void EngineService::Shutdown(bool cancel_in_flight) {
  std::unique_lock<std::mutex> lock(mu_);
  accepting_ = false;
  snapshot_.accepting = false;
  if (cancel_in_flight) cancel_all_ = true;
  wake_.notify_all();
  if (std::this_thread::get_id() == thread_id_) return;
  idle_.wait(lock, [&] { return stop_ || (!busy_ && inbox_.empty()); });
}

EngineSnapshot EngineService::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_;
}

void EngineService::RefreshSnapshot() {
  EngineSnapshot s;
  s.running = engine_.num_running();
  s.waiting = engine_.num_waiting();
  const BlockPool& pool = engine_.block_pool();
  s.kv_blocks_total = pool.num_blocks();
  s.kv_blocks_free = pool.num_free();
  s.kv_block_size = pool.block_size();
  s.prefix_lookups = pool.lookups();
  s.prefix_hits = pool.hits();
  s.preemptions = engine_.num_preemptions();
  std::lock_guard<std::mutex> lock(mu_);
  s.steps = snapshot_.steps;
  s.step_errors = snapshot_.step_errors;
  s.accepting = accepting_;
  snapshot_ = s;
}

void EngineService::Loop() {
  for (;;) {
    std::deque<std::unique_ptr<Pending>> inbox;
    std::vector<int64_t> cancels;
    bool cancel_all = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      busy_ = engine_.HasWork();
      if (!busy_ && inbox_.empty()) idle_.notify_all();
      wake_.wait(lock, [&] {
        return stop_ || !inbox_.empty() || !cancels_.empty() || cancel_all_ || engine_.HasWork();
      });
      if (stop_) break;
      inbox.swap(inbox_);
      cancels.swap(cancels_);
      cancel_all = cancel_all_;
      cancel_all_ = false;
      busy_ = true;
    }
    for (auto& p : inbox) {
      if (cancel_all) {
        p->accepted.set_value(Status::Cancelled("the server is shutting down; retry on another replica"));
        continue;
      }
      p->accepted.set_value(engine_.Submit(std::move(p->request)));
    }
    for (int64_t id : cancels) engine_.Cancel(id);
    if (cancel_all) engine_.CancelAll();
    const bool ran = engine_.HasWork();
    const bool failed = ran && !engine_.Step().ok();
    RefreshSnapshot();
    if (ran) {
      std::lock_guard<std::mutex> lock(mu_);
      ++snapshot_.steps;
      if (failed) ++snapshot_.step_errors;
    }
  }
  // Stopping with work left: cancel it so that every waiter gets a final event.
  std::deque<std::unique_ptr<Pending>> inbox;
  {
    std::lock_guard<std::mutex> lock(mu_);
    inbox.swap(inbox_);
  }
  for (auto& p : inbox) p->accepted.set_value(Status::Cancelled("the server is shutting down"));
  engine_.CancelAll();
  while (engine_.HasWork()) {
    if (!engine_.Step().ok()) break;
  }
  std::lock_guard<std::mutex> lock(mu_);
  busy_ = false;
  idle_.notify_all();
}

}  // namespace formiga
