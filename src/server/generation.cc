#include "server/generation.h"

#include <utility>

namespace formiga::server {

Result<std::shared_ptr<GenerationRun>> GenerationRun::Start(EngineService& service,
                                                            std::vector<GenerationRequest> requests) {
  std::shared_ptr<GenerationRun> run(new GenerationRun(service, static_cast<int>(requests.size())));
  run->choice_done_.assign(requests.size(), false);
  for (size_t i = 0; i < requests.size(); ++i) {
    std::shared_ptr<Queue> q = run->queue_;
    const int choice = static_cast<int>(i);
    requests[i].on_event = [q, choice](const TokenEvent& ev) {
      std::lock_guard<std::mutex> lock(q->mu);
      if (q->abandoned) return false;
      q->events.push_back({choice, ev});
      q->cv.notify_all();
      return true;
    };
    Result<int64_t> id = service.Submit(std::move(requests[i]));
    if (!id.ok()) {
      run->Abandon();
      return id.status();
    }
    run->ids_.push_back(*id);
  }
  return run;
}

GenerationRun::~GenerationRun() {
  if (!finished()) Abandon();
}

std::optional<ChoiceEvent> GenerationRun::Next(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(queue_->mu);
  if (!queue_->cv.wait_until(lock, deadline, [&] { return !queue_->events.empty(); })) return std::nullopt;
  ChoiceEvent e = std::move(queue_->events.front());
  queue_->events.pop_front();
  if (e.event.done && !choice_done_[e.choice]) {
    choice_done_[e.choice] = true;
    ++done_;
  }
  return e;
}

void GenerationRun::Abandon() {
  {
    std::lock_guard<std::mutex> lock(queue_->mu);
    if (queue_->abandoned) return;
    queue_->abandoned = true;
  }
  // NOTE: cancelling a finished id is a no-op, so no need to know which finished.
  for (int64_t id : ids_) service_.Cancel(id);
}

}  // namespace formiga::server
