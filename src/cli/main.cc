// attestnet: one binary, subcommands.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{
      "attestnet: a decentralized remote-attestation network.\n"
      "Verifier nodes appraise a VM's hardware evidence, agree on the verdict with PBFT and\n"
      "append it to a hash-chained ledger."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "attestnet 0.1.0");
  attestnet::cli::add_sim_command(app);
  attestnet::cli::add_ledger_command(app);
  attestnet::cli::add_verify_command(app);
  attestnet::cli::add_genesis_commands(app);
  attestnet::cli::add_evidence_command(app);
  attestnet::cli::add_attest_command(app);
  attestnet::cli::add_node_commands(app);
  attestnet::cli::add_bench_command(app);
  attestnet::cli::add_registry_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return attestnet::cli::exit_code();
}
