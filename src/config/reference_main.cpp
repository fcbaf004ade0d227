// rtm-config-reference [PATH]: writes the config reference (docs/config.md) generated from the schema tables to PATH,
// or to stdout. Run by `ninja config-reference`, which writes the file in the source tree.
#include <fstream>
#include <iostream>
#include <string>

#include "config/reference.hpp"

int main(int argc, char** argv) {
  const std::string text = rtm::config::schema::reference_markdown();
  if (argc < 2) {
    std::cout << text;
    return std::cout ? 0 : 1;
  }
  std::ofstream out(argv[1], std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    std::cerr << "rtm-config-reference: cannot write " << argv[1] << "\n";
    return 1;
  }
  return 0;
}
