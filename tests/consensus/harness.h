// A small synchronous harness for replica unit tests: n replicas, a FIFO network the test can
// filter, persisted records per replica, and a manual clock. No randomness.
#pragma once

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "consensus/replica.h"

namespace attestnet::consensus::test {

struct Packet {
  ReplicaId from;
  ReplicaId to;
  std::shared_ptr<const Bytes> bytes;
  MsgType type;
};

class Cluster {
 public:
  explicit Cluster(size_t n, std::function<void(ReplicaConfig&)> tweak = {}) {
    crypto::init();
    for (size_t i = 0; i < n; ++i) {
      keys.push_back(crypto::SecretKey::from_seed(crypto::test_seed("unit-" + std::to_string(i))));
      cfg.committee.push_back(keys.back().public_key());
    }
    cfg.chain_id = "unit";
    cfg.batch_max = 4;
    cfg.batch_wait_ms = 1;
    cfg.checkpoint_interval = 4;
    cfg.window = 8;
    cfg.view_change_timeout_ms = 100;
    cfg.status_interval_ms = 50;
    if (tweak) tweak(cfg);
    disks.resize(n);
    synced.assign(n, 0);
    delivered.resize(n);
    actions.resize(n);
    certified.resize(n);
    up.assign(n, true);
    for (size_t i = 0; i < n; ++i) replicas.push_back(make(static_cast<ReplicaId>(i)));
  }

  std::unique_ptr<Replica> make(ReplicaId i) {
    ReplicaConfig c = cfg;
    c.self = i;
    return std::make_unique<Replica>(c, keys[i], hooks_of(i));
  }

  // `hooks`, and with blocks_from_disk a load_block that reads replica i's committed records
  // back (as the node reads its store), counted in block_loads.
  ReplicaHooks hooks_of(ReplicaId i) {
    ReplicaHooks h = hooks;
    if (!blocks_from_disk) return h;
    h.load_block = [this, i](Seq s) -> std::shared_ptr<const CommittedBlock> {
      for (const auto& rec : disks[i]) {
        if (rec.kind != PersistRecord::Kind::kCommitted || rec.seq != s) continue;
        Reader rd(as_view(rec.bytes), kMaxMessageBytes);
        auto cb = CommittedBlock::decode(rd);
        if (!cb.ok()) return nullptr;
        ++block_loads;
        return std::make_shared<const CommittedBlock>(std::move(cb).value());
      }
      return nullptr;
    };
    return h;
  }

  // `lose_unsynced`: the records no durable send covered are gone, as after a power loss.
  void restart(ReplicaId i, bool lose_unsynced = false) {
    ReplicaConfig c = cfg;
    c.self = i;
    if (lose_unsynced) disks[i].resize(synced[i]);
    synced[i] = disks[i].size();
    replicas[i] = Replica::recover(c, keys[i], hooks_of(i), disks[i]);
    up[i] = true;
  }

  // As the node restarts: from the newest stable checkpoint its ledger (here: what it
  // delivered) reached, replaying only what is above it. Returns the checkpoint it resumed at
  // (0: none, every record replayed).
  Seq restart_from_checkpoint(ReplicaId i) {
    ReplicaConfig c = cfg;
    c.self = i;
    synced[i] = disks[i].size();
    Seq executed = delivered[i].empty() ? 0 : delivered[i].back()->block.height;
    std::optional<StableCheckpoint> cp;
    for (const auto& rec : disks[i]) keep_newest_checkpoint(cp, rec, executed);
    replicas[i] = Replica::start_recovery(c, keys[i], hooks_of(i));
    Seq at = 0;
    if (cp) {
      uint64_t time = 0;
      for (const auto& b : delivered[i])
        if (b->block.height <= cp->seq) time = std::max(time, b->block.block_time);
      if (replicas[i]->resume_at(*cp, time).ok()) at = cp->seq;
    }
    for (const auto& rec : disks[i]) replicas[i]->replay(rec);
    replicas[i]->finish_recovery();
    up[i] = true;
    return at;
  }

  // As a host does: records are synced before a durable send leaves, and the leases among them
  // are then reported durable.
  void absorb(ReplicaId r, Actions a) {
    for (auto& x : a) {
      actions[r].push_back(x);
      if (auto* p = std::get_if<PersistAction>(&x)) {
        disks[r].push_back(p->record);
      } else if (auto* s = std::get_if<SendAction>(&x)) {
        if (s->durable) {
          for (size_t k = synced[r]; k < disks[r].size(); ++k)
            if (disks[r][k].kind == PersistRecord::Kind::kLease)
              replicas[r]->on_lease_durable(disks[r][k].view, disks[r][k].seq);
          synced[r] = disks[r].size();
        }
        for (size_t t = 0; t < replicas.size(); ++t) {
          if (t == r || (s->to && *s->to != t)) continue;
          net.push_back(Packet{r, static_cast<ReplicaId>(t), s->bytes, s->type});
        }
      } else if (auto* d = std::get_if<DeliverAction>(&x)) {
        delivered[r].push_back(d->block);
      } else if (auto* h = std::get_if<HeaderCertifiedAction>(&x)) {
        certified[r].push_back(*h);
      }
    }
  }

  void request(const Request& q, std::vector<ReplicaId> to = {}) {
    if (to.empty())
      for (size_t i = 0; i < replicas.size(); ++i) to.push_back(static_cast<ReplicaId>(i));
    for (ReplicaId r : to)
      if (up[r]) absorb(r, replicas[r]->on_request(q, now));
  }

  // Deliver queued packets until quiet. `drop` returns true for packets to lose.
  void run(std::function<bool(const Packet&)> drop = {}, size_t max = 100000) {
    while (!net.empty() && max-- > 0) {
      Packet p = net.front();
      net.pop_front();
      if (!up[p.to] || (drop && drop(p))) continue;
      absorb(p.to, replicas[p.to]->on_message(as_view(*p.bytes), now));
    }
  }

  void tick(uint64_t ms, std::function<bool(const Packet&)> drop = {}) {
    for (uint64_t t = 0; t < ms; t += 5) {
      now += 5;
      for (size_t i = 0; i < replicas.size(); ++i)
        if (up[i]) absorb(static_cast<ReplicaId>(i), replicas[i]->on_tick(now));
      run(drop);
    }
  }

  static Request req(uint64_t client, uint64_t seq) {
    return Request{client, seq, Bytes{static_cast<uint8_t>(client), static_cast<uint8_t>(seq)}};
  }

  ReplicaConfig cfg;
  ReplicaHooks hooks;
  bool blocks_from_disk = false;
  size_t block_loads = 0;
  std::vector<crypto::SecretKey> keys;
  std::vector<std::unique_ptr<Replica>> replicas;
  std::vector<std::vector<PersistRecord>> disks;
  std::vector<size_t> synced;  // disks[r][0, synced[r]) are durable
  std::vector<std::vector<std::shared_ptr<const CommittedBlock>>> delivered;
  std::vector<Actions> actions;
  std::vector<std::vector<HeaderCertifiedAction>> certified;
  std::vector<bool> up;
  std::deque<Packet> net;
  uint64_t now = 1000;
};

}  // namespace attestnet::consensus::test
