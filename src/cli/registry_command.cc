// `attestnet join | leave | rotate-key`: the registry transactions of docs/trust.md, built and
// signed here with the node's identity key and submitted to a running node
// (POST /v1/transactions?wait=), which orders them; the answer is what execution decided.
//
//   join        a node not in the genesis registers: its key, name and peer endpoint, with its
//               own platform evidence (TPM quote, SEV-SNP/TDX report, or a bundle) whose user
//               data is H(genesis) bound to its key; the genesis admission policy must affirm it
//   leave       a registered node leaves (a sitting member serves to the end of its epoch)
//   rotate-key  the old key signs over to a new one (not during a term); restart the node with
//               the new key file afterwards
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "api/client.h"
#include "cli/commands.h"
#include "node/config.h"
#include "state/trust.h"

namespace attestnet::cli {
namespace {

struct RegistryArgs {
  std::string node = "http://127.0.0.1:8100";
  std::string config, key, new_key, genesis, name, endpoint;
  double wait = 60;
  EvidenceSource ev;
};

int fail(const char* cmd, const std::string& m) {
  std::fprintf(stderr, "attestnet %s: %s\n", cmd, m.c_str());
  return 1;
}

// Key, genesis and (for join) endpoint: from --config node.toml, or given one by one.
struct Identity {
  crypto::SecretKey key;
  ledger::Genesis genesis;
  std::string endpoint, key_file;
};

Result<Identity> identity(const RegistryArgs& a, bool need_endpoint) {
  std::string key_file = a.key, genesis_file = a.genesis, endpoint = a.endpoint;
  if (!a.config.empty()) {
    ATN_TRY(node::NodeConfig c, node::load_config(a.config));
    if (key_file.empty()) key_file = c.key_file;
    if (genesis_file.empty()) genesis_file = c.genesis_file;
    if (endpoint.empty() && c.peer_listen) endpoint = c.peer_listen->to_string();
  }
  if (key_file.empty() || genesis_file.empty())
    return make_error(Errc::kInvalidArgument,
                      "give --config node.toml, or --key FILE and --genesis FILE");
  if (need_endpoint && endpoint.empty())
    return make_error(Errc::kInvalidArgument,
                      "give --endpoint HOST:PORT (the peer address other nodes dial), or a "
                      "--config with [listen] peer");
  Identity id{crypto::SecretKey::generate(), {}, endpoint, key_file};
  ATN_TRY(id.key, node::load_key(key_file));
  ATN_TRY(id.genesis, load_genesis(genesis_file));
  return id;
}

// Submits a transaction and waits for its outcome; exit 0 when accepted.
int submit(const char* cmd, const RegistryArgs& a, const Bytes& tx) {
  auto url = api::parse_url(a.node);
  if (!url.ok()) return fail(cmd, url.error().reason);
  nlohmann::json body = {{"transaction", to_hex(as_view(tx))}};
  char target[64];
  std::snprintf(target, sizeof target, "/v1/transactions?wait=%g", a.wait);
  std::printf("submitting to %s and waiting up to %g s for the network's decision...\n",
              a.node.c_str(), a.wait);
  std::fflush(stdout);
  auto r = api::http_call(*url, "POST", target, body.dump(), "application/json",
                          static_cast<uint64_t>(a.wait * 1000) + 5000);
  if (!r.ok()) return fail(cmd, r.error().reason);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(r->body);
  } catch (const std::exception&) {
    return fail(cmd, "the node answered " + std::to_string(r->status) + ": " + r->body);
  }
  if (r->status == 202)
    return fail(cmd, "not executed within " + std::to_string(a.wait) + " s; ask again with GET " +
                         "/v1/transactions/" + j.value("transaction_id", std::string("?")));
  if (r->status != 200) return fail(cmd, "the node refused it: " + j.value("error", r->body));
  std::string status = j.value("status", std::string("?"));
  std::printf("%s in block %llu: %s\n", status.c_str(),
              static_cast<unsigned long long>(j.value("height", uint64_t{0})),
              j.value("reason", std::string()).c_str());
  return status == "accepted" ? 0 : 1;
}

int join(const RegistryArgs& a) {
  auto id = identity(a, true);
  if (!id.ok()) return fail("join", id.error().reason);
  std::string name = a.name.empty() ? std::filesystem::path(id->key_file).stem().string() : a.name;
  crypto::PublicKey pk = id->key.public_key();
  Hash32 binding = state::join_binding(id->genesis.hash(), pk);
  std::printf("1/3 node %s, key %s, endpoint %s, chain %s\n", name.c_str(),
              to_hex(ByteView(pk.data(), 32)).substr(0, 16).c_str(), id->endpoint.c_str(),
              id->genesis.chain_id.c_str());
  auto ev = collect_evidence(a.ev, binding);
  if (!ev.ok()) return fail("join", ev.error().reason);
  std::printf(
      "2/3 %s evidence of this platform, bound to the genesis and the key (%s, %zu bytes)\n",
      ev->first.c_str(), to_hex(binding).substr(0, 16).c_str(), ev->second.size());
  auto j = state::NodeJoin::make(id->key, name, id->endpoint, ev->first, std::move(ev->second));
  std::printf("3/3 ");
  return submit("join", a, j.encode());
}

int leave(const RegistryArgs& a) {
  auto id = identity(a, false);
  if (!id.ok()) return fail("leave", id.error().reason);
  return submit("leave", a, state::NodeLeave::make(id->key, id->genesis.chain_id).encode());
}

int rotate(const RegistryArgs& a) {
  auto id = identity(a, false);
  if (!id.ok()) return fail("rotate-key", id.error().reason);
  auto next = node::load_key(a.new_key);
  if (!next.ok()) return fail("rotate-key", next.error().reason);
  if (next->public_key() == id->key.public_key())
    return fail("rotate-key", "the new key is the old key");
  int rc =
      submit("rotate-key", a,
             state::KeyRotation::make(id->key, next->public_key(), id->genesis.chain_id).encode());
  if (rc == 0)
    std::printf("restart the node with key = \"%s\" in its config: the old key is retired\n",
                a.new_key.c_str());
  return rc;
}

void common(CLI::App* c, RegistryArgs& a) {
  c->add_option("--node", a.node, "a node's API URL")->default_val("http://127.0.0.1:8100");
  c->add_option("--config", a.config, "the node's node.toml (key, genesis, peer endpoint)");
  c->add_option("--key", a.key, "identity key file (instead of --config)");
  c->add_option("--genesis", a.genesis, "genesis file (instead of --config)");
  c->add_option("--wait", a.wait, "seconds to wait for the outcome")->default_val(60);
}

}  // namespace

void add_registry_commands(CLI::App& app) {
  auto args = std::make_shared<RegistryArgs>();
  auto* j = app.add_subcommand(
      "join",
      "Register this node: submit a NodeJoin with the platform's own evidence (the genesis "
      "admission policy must affirm it)");
  common(j, *args);
  j->add_option("--name", args->name, "the node's name (default: the key file's stem)");
  j->add_option("--endpoint", args->endpoint,
                "peer endpoint HOST:PORT to announce (default: the config's [listen] peer)");
  add_evidence_options(j, args->ev);
  j->callback([args] { set_exit_code(join(*args)); });
  auto* l = app.add_subcommand("leave", "Deregister this node (signed with its key)");
  common(l, *args);
  l->callback([args] { set_exit_code(leave(*args)); });
  auto* r = app.add_subcommand(
      "rotate-key", "Replace this node's identity key (signed by the old key; not during a term)");
  common(r, *args);
  r->add_option("--new-key", args->new_key, "the new key file (attestnet keygen)")->required();
  r->callback([args] { set_exit_code(rotate(*args)); });
}

}  // namespace attestnet::cli
