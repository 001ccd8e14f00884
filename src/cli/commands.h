// The command line: parses arguments and runs one command. main() is a call to run_cli().
#pragma once

namespace stagesync::cli {

int run_cli(int argc, char** argv);

}  // namespace stagesync::cli
