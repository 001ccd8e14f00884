#include "cli/commands.h"

int main(int argc, char** argv) { return stagesync::cli::run_cli(argc, argv); }
