// rtm-bridge: the process entry point. Parses the command line and hands over to app::run; everything else lives in
// the core library that the tests and benchmarks link too.
#include "app/cli.hpp"

int main(int argc, char** argv) {
  return rtm::app::main(argc, argv);
}
