// The HTTP/JSON API (docs/api.md) over a running node.
#include <chrono>
#include <nlohmann/json.hpp>

#include "node/node.h"

#include <algorithm>
#include <set>

namespace attestnet::node {
namespace {

using api::HttpReply;
using api::HttpRequest;
using api::json_error;
using api::Reply;
using json = nlohmann::json;

HttpReply ok_json(const json& j, unsigned status = 200) {
  return {status, j.dump(2) + "\n"};
}

uint64_t steady_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

json record_json(const ledger::AttestationRecord& r) {
  json j;
  j["request_id"] = to_hex(r.request_id);
  j["vm_id"] = r.vm_id;
  j["platform"] = r.platform;
  j["verdict"] = ledger::verdict_name(r.verdict);
  j["policy"] = {{"id", r.policy_id}, {"version", r.policy_version}};
  j["timestamp_ms"] = r.timestamp;
  j["vm_public_key"] = to_hex(ByteView(r.vm_public_key.data(), r.vm_public_key.size()));
  j["measurements"] = json::array();
  for (const auto& m : r.measurements)
    j["measurements"].push_back({{"name", m.name}, {"digest", to_hex(as_view(m.digest))}});
  j["claims"] = json::object();
  for (const auto& c : r.claims) j["claims"][c.name] = c.value;
  j["reasons"] = r.reasons;
  return j;
}

json header_json(const ledger::BlockHeader& h) {
  return {{"chain_id", h.chain_id},
          {"height", h.height},
          {"epoch", h.epoch},
          {"view", h.view},
          {"hash", to_hex(h.hash())},
          {"prev_hash", to_hex(h.prev_hash)},
          {"log_size", h.log_size},
          {"log_root", to_hex(h.log_root)},
          {"state_root", to_hex(h.state_root)},
          {"committee_hash", to_hex(h.committee_hash)},
          {"block_time_ms", h.block_time},
          {"proposer", h.proposer}};
}

unsigned status_for(Errc c) {
  switch (c) {
    case Errc::kUnavailable:
      return 503;
    case Errc::kOversize:
      return 413;
    case Errc::kNotFound:
      return 404;
    default:
      return 400;
  }
}

// ?wait=SECONDS, at most 60.
Result<uint64_t> wait_ms(const HttpRequest& r) {
  auto it = r.query.find("wait");
  if (it == r.query.end()) return uint64_t{0};
  try {
    size_t used = 0;
    double s = std::stod(it->second, &used);
    if (used != it->second.size() || s < 0 || s > 60) throw std::out_of_range("wait");
    return static_cast<uint64_t>(s * 1000);
  } catch (const std::exception&) {
    return make_error(Errc::kInvalidArgument, "wait must be a number of seconds from 0 to 60");
  }
}

// GET .../{id}?wait=: the id (64 hex digits) and the wait.
Result<std::pair<Hash32, uint64_t>> id_and_wait(const HttpRequest& r, const std::string& id_hex,
                                                const char* what) {
  auto id = hash32_from_hex(id_hex);
  if (!id) return make_error(Errc::kBadValue, std::string("a ") + what + " id is 64 hex digits");
  ATN_TRY(uint64_t wait, wait_ms(r));
  return std::make_pair(*id, wait);
}

// ?NAME=N (an unsigned integer), or nullopt when absent.
Result<std::optional<uint64_t>> uint_param(const HttpRequest& r, const char* name) {
  auto it = r.query.find(name);
  if (it == r.query.end()) return std::optional<uint64_t>();
  try {
    size_t used = 0;
    uint64_t v = std::stoull(it->second, &used);
    if (used != it->second.size()) throw std::invalid_argument(name);
    return std::optional<uint64_t>(v);
  } catch (const std::exception&) {
    return make_error(Errc::kInvalidArgument, std::string(name) + " must be an epoch number");
  }
}

void answer_response(Node& node, const Hash32& id, uint64_t wait, Reply reply, bool submitted,
                     const HttpRequest& req) {
  auto from = uint_param(req, "from_epoch");
  if (!from.ok()) return reply(json_error(400, from.error().reason));
  size_t n = node.genesis().seats();
  node.await_response(id, steady_ms() + wait, from->value_or(0),
                      [reply, id, n, submitted](Result<ledger::AttestationResponse> r) {
                        if (r.ok()) {
                          json j = {{"request_id", to_hex(id)},
                                    {"status", "committed"},
                                    {"record", record_json(r->record)},
                                    {"response", r->to_json_without_binary()}};
                          // The same text as ok_json with "binary" in j["response"], without
                          // escaping the hex byte by byte (api/http_server.h).
                          auto body = api::dump_with_hex(j, "response", "binary",
                                                         to_hex(as_view(r->encode(n))));
                          if (!body.ok()) return reply(json_error(500, body.error().reason));
                          reply(HttpReply{200, std::move(body).value() + "\n"});
                        } else if (r.error().code == Errc::kNotFound && submitted) {
                          reply(ok_json({{"request_id", to_hex(id)}, {"status", "pending"}}, 202));
                        } else {
                          Errc c = r.error().code;
                          reply(json_error(c == Errc::kNotFound          ? 404
                                           : c == Errc::kInvalidArgument ? 400
                                                                         : 500,
                                           r.error().reason));
                        }
                      });
}

// The body of a submission: raw bytes (application/octet-stream) or {"<field>": "<hex>"}.
Result<Bytes> submitted_bytes(const HttpRequest& r, const char* field, const char* what) {
  if (r.content_type.rfind("application/octet-stream", 0) == 0)
    return Bytes(r.body.begin(), r.body.end());
  json j;
  try {
    j = json::parse(r.body);
  } catch (const json::exception& e) {
    return make_error(Errc::kBadValue, std::string("the body is not JSON: ") + e.what());
  }
  if (!j.is_object() || !j.contains(field) || !j[field].is_string())
    return make_error(Errc::kBadValue, std::string("the body must be {\"") + field +
                                           "\": \"<hex of " + what + ">\"}");
  auto b = from_hex(j[field].get<std::string>());
  if (!b) return make_error(Errc::kBadValue, std::string("\"") + field + "\" is not hex");
  return std::move(*b);
}

void submit(Node& node, const HttpRequest& r, Reply reply) {
  auto payload = submitted_bytes(r, "request", "an AttestationRequest (tag 0x0601)");
  if (!payload.ok()) return reply(json_error(400, payload.error().reason));
  state::TxKind kind = state::tx_kind(as_view(*payload));
  if (kind != state::TxKind::kAttestation && kind != state::TxKind::kUnknown)
    return reply(json_error(400, "a trust transaction goes to POST /v1/transactions"));
  auto wait = wait_ms(r);
  if (!wait.ok()) return reply(json_error(400, wait.error().reason));
  auto id = node.submit(std::move(payload).value());
  if (!id.ok())
    return reply(json_error(status_for(id.error().code), "request refused: " + id.error().reason));
  if (*wait == 0) return reply(ok_json({{"request_id", to_hex(*id)}, {"status", "pending"}}, 202));
  answer_response(node, *id, *wait, std::move(reply), true, r);
}

void answer_transaction(Node& node, const Hash32& id, uint64_t wait, Reply reply, bool submitted) {
  node.await_transaction(id, steady_ms() + wait, [reply, id, submitted](Result<Node::TxResult> r) {
    if (r.ok()) {
      reply(ok_json({{"transaction_id", to_hex(id)},
                     {"status", r->accepted ? "accepted" : "refused"},
                     {"height", r->height},
                     {"reason", r->reason}}));
    } else if (submitted) {
      reply(ok_json({{"transaction_id", to_hex(id)}, {"status", "pending"}}, 202));
    } else {
      reply(json_error(404, "transaction " + to_hex(id) + ": " + r.error().reason));
    }
  });
}

void submit_transaction(Node& node, const HttpRequest& r, Reply reply) {
  auto payload = submitted_bytes(r, "transaction",
                                 "a NodeJoin, NodeLeave, KeyRotation, Endorsement or "
                                 "MisbehaviourProof");
  if (!payload.ok()) return reply(json_error(400, payload.error().reason));
  auto wait = wait_ms(r);
  if (!wait.ok()) return reply(json_error(400, wait.error().reason));
  auto id = node.submit_transaction(std::move(payload).value());
  if (!id.ok())
    return reply(
        json_error(status_for(id.error().code), "transaction refused: " + id.error().reason));
  if (*wait == 0)
    return reply(ok_json({{"transaction_id", to_hex(*id)}, {"status", "pending"}}, 202));
  answer_transaction(node, *id, *wait, std::move(reply), true);
}

void get_block(Node& node, const std::string& hs, Reply reply) {
  uint64_t h = 0;
  try {
    size_t used = 0;
    h = std::stoull(hs, &used);
    if (used != hs.size()) throw std::invalid_argument("h");
  } catch (const std::exception&) {
    return reply(json_error(400, "block height \"" + hs + "\" is not a number"));
  }
  node.read_store([h, reply](const ledger::ReplicaStore& s) {
    auto hf = s.header(h);
    if (!hf.ok()) return reply(json_error(404, "no block at height " + std::to_string(h)));
    auto hdr = ledger::BlockHeader::decode(as_view(hf->first));
    if (!hdr.ok()) return reply(json_error(500, hdr.error().reason));
    json j = header_json(*hdr);
    auto cert = s.certificate(h);
    j["certified"] = cert.ok();
    if (cert.ok()) {
      j["certificate"] = {{"view", cert->first}, {"signers", cert->second.sigs.size()}};
    }
    json recs = json::array();
    uint64_t first = 0;
    if (h > 1)
      if (auto prev = s.header(h - 1); prev.ok())
        if (auto ph = ledger::BlockHeader::decode(as_view(prev->first)); ph.ok())
          first = ph->log_size;
    for (uint64_t i = first; i < hdr->log_size; ++i)
      if (auto rec = s.record(i); rec.ok())
        if (auto d = ledger::AttestationRecord::decode(as_view(*rec)); d.ok())
          recs.push_back(record_json(*d));
    j["records"] = recs;
    reply(ok_json(j));
  });
}

void get_vm(Node& node, const std::string& vm, Reply reply) {
  node.read_store([vm, reply](const ledger::ReplicaStore& s) {
    auto hist = s.vm_history(vm);
    if (!hist.ok() || hist->empty())
      return reply(json_error(404, "no attestation of VM \"" + vm + "\" on the ledger"));
    json h = json::array();
    for (uint64_t leaf : *hist)
      if (auto rec = s.record(leaf); rec.ok())
        if (auto d = ledger::AttestationRecord::decode(as_view(*rec)); d.ok()) {
          json rj = record_json(*d);
          rj["leaf_index"] = leaf;
          h.push_back(rj);
        }
    json j = {{"vm_id", vm}, {"latest", h.empty() ? json() : h.back()}, {"history", h}};
    reply(ok_json(j));
  });
}

}  // namespace

api::Handler make_api_handler(Node& node) {
  return [&node](const HttpRequest& r, Reply reply) {
    const std::string& p = r.path;
    auto is = [&](const char* m, const char* path) { return r.method == m && p == path; };
    auto starts = [&](const std::string& prefix) {
      return p.rfind(prefix, 0) == 0 && p.size() > prefix.size();
    };
    if (is("GET", "/healthz")) return reply(ok_json({{"ok", true}}));
    if (is("GET", "/metrics")) return reply({200, node.metrics(), "text/plain; version=0.0.4"});
    if (is("GET", "/v1/status")) return reply(ok_json(node.status()));
    if (is("GET", "/v1/freshness")) {
      auto [h, height] = node.freshness();
      return reply(ok_json({{"anchor", to_hex(h)},
                            {"height", height},
                            {"chain_id", node.genesis().chain_id},
                            {"genesis_hash", to_hex(node.genesis().hash())}}));
    }
    if (is("GET", "/v1/nodes")) {
      json s = node.status();
      std::set<std::string> reachable;
      for (const auto& c : s["peers_connected"]) reachable.insert(c.get<std::string>());
      reachable.insert(s["node"].get<std::string>());
      node.read_trust([reply, reachable](const state::TrustState& t,
                                         const std::map<uint64_t, ledger::Committee>& cs) {
        auto hex = [](const crypto::PublicKey& k) { return to_hex(ByteView(k.data(), 32)); };
        const auto& seats = t.committee().members;
        json arr = json::array();
        for (uint32_t i = 0; i < t.registry_size(); ++i) {  // by registry index
          const state::NodeEntry& e = t.at(i);
          const crypto::PublicKey& k = e.key;
          json hist = json::array(), terms = json::array();
          for (const auto& [ep, sc] : e.history) hist.push_back({{"epoch", ep}, {"score_ppm", sc}});
          for (uint64_t ep : e.terms) terms.push_back(ep);
          arr.push_back({{"index", e.index},
                         {"name", e.name},
                         {"public_key", hex(k)},
                         {"joined_height", e.joined_height},
                         {"endpoint", e.endpoint},
                         {"committee", std::find(seats.begin(), seats.end(), k) != seats.end()},
                         {"active", e.active},
                         {"reachable_from_here", reachable.count(e.name) > 0},
                         {"reputation_ppm", e.score_ppm},
                         {"excluded_until_epoch", e.excluded_until},
                         {"slashes", e.slashes},
                         {"terms", terms},
                         {"history", hist}});
        }
        json committees = json::array();
        for (const auto& [ep, c] : cs) {
          json m = json::array();
          for (const auto& k : c.members) m.push_back(hex(k));
          committees.push_back({{"epoch", ep}, {"hash", to_hex(c.hash())}, {"members", m}});
        }
        reply(ok_json({{"epoch", t.epoch()}, {"nodes", arr}, {"committees", committees}}));
      });
      return;
    }
    if (p == "/v1/attestations") {
      if (r.method != "POST") return reply(json_error(405, "use POST to submit an attestation"));
      return submit(node, r, std::move(reply));
    }
    if (r.method == "GET" && starts("/v1/attestations/")) {
      auto iw = id_and_wait(r, p.substr(17), "request");
      if (!iw.ok()) return reply(json_error(400, iw.error().reason));
      return answer_response(node, iw->first, iw->second, std::move(reply), false, r);
    }
    if (p == "/v1/checkpoint" && r.method == "GET") {
      auto e = uint_param(r, "epoch");
      if (!e.ok()) return reply(json_error(400, e.error().reason));
      node.checkpoint(*e, [reply](Result<json> j) {
        if (j.ok()) return reply(ok_json(*j));
        reply(json_error(j.error().code == Errc::kNotFound ? 404 : 503, j.error().reason));
      });
      return;
    }
    if (p == "/v1/transactions") {
      if (r.method != "POST") return reply(json_error(405, "use POST to submit a transaction"));
      return submit_transaction(node, r, std::move(reply));
    }
    if (r.method == "GET" && starts("/v1/transactions/")) {
      auto iw = id_and_wait(r, p.substr(17), "transaction");
      if (!iw.ok()) return reply(json_error(400, iw.error().reason));
      return answer_transaction(node, iw->first, iw->second, std::move(reply), false);
    }
    if (r.method == "GET" && starts("/v1/blocks/")) return get_block(node, p.substr(11), reply);
    if (r.method == "GET" && starts("/v1/vms/")) return get_vm(node, p.substr(8), reply);
    return reply(json_error(404, "no such endpoint: " + r.method + " " + p + " (docs/api.md)"));
  };
}

}  // namespace attestnet::node
