#include "consensus/held_requests.h"

namespace attestnet::consensus {

HeldRequests::HeldRequests(size_t capacity) : capacity_(capacity) {}

void HeldRequests::hold(Request q) {
  Hash32 id = q.id();
  if (executed_.count(id) || index_.count(id)) return;
  index_.emplace(id, next_);
  order_.emplace(next_++, std::make_pair(id, std::move(q)));
  while (order_.size() > capacity_) {
    index_.erase(order_.begin()->second.first);
    order_.erase(order_.begin());
  }
}

void HeldRequests::executed(const Hash32& id) {
  if (auto it = index_.find(id); it != index_.end()) {
    order_.erase(it->second);
    index_.erase(it);
    ++dropped_executed_;
  }
  if (!executed_.insert(id).second) return;
  executed_order_.push_back(id);
  while (executed_order_.size() > 4 * capacity_) {
    executed_.erase(executed_order_.front());
    executed_order_.pop_front();
  }
}

std::vector<Request> HeldRequests::take() {
  std::vector<Request> out;
  out.reserve(order_.size());
  for (auto& [n, entry] : order_) out.push_back(std::move(entry.second));
  order_.clear();
  index_.clear();
  return out;
}

}  // namespace attestnet::consensus
