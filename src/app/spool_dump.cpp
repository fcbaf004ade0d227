#include "app/spool_dump.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <ostream>
#include <vector>

#include "app/cli.hpp"
#include "kafka/record.hpp"
#include "kafka/spooled_record.hpp"
#include "spool/checkpoint.hpp"
#include "spool/file_system.hpp"
#include "spool/format.hpp"
#include "spool/segment_reader.hpp"
#include "util/json_writer.hpp"

namespace rtm::app {
namespace {

void print_record(std::ostream& out, std::string& line, const spool::frame_view& f, const kafka::record& r) {
  using kafka::record_field;
  line.clear();
  line += R"({"seq":)";
  line += std::to_string(f.seq);
  line += R"(,"id":)";
  const std::string_view id =
      r.kind == kafka::record_kind::event ? kafka::envelope_id(r.field(record_field::value)) : std::string_view{};
  if (id.empty()) {
    line += "null";
  } else {
    json::append_string(line, id);
  }
  line += R"(,"kind":)";
  line += r.kind == kafka::record_kind::event ? R"("event")" : R"("dead_letter")";
  line += R"(,"connection":)";
  json::append_string(line, r.field(record_field::connection));
  line += R"(,"team_id":)";
  if (r.kind == kafka::record_kind::event) {
    json::append_string(line, r.field(record_field::key));
  } else {
    line += "null";  // dead letters are keyed by their connection, not a team
  }
  line += R"(,"event":)";
  json::append_string(
      line, r.kind == kafka::record_kind::event ? r.field(record_field::event) : r.field(record_field::error));
  line += R"(,"topic":)";
  json::append_string(line, r.field(record_field::topic));
  line += R"(,"bytes":)";
  line += std::to_string(r.field(record_field::value).size());
  line += "}\n";
  out << line;
}

}  // namespace

int spool_dump(const std::string& path, std::ostream& out, std::ostream& err) {
  spool::file_system& fs = spool::real_file_system();
  std::vector<std::string> names;
  if (const std::error_code ec = fs.list(path, names)) {
    err << "rtm-bridge: cannot read the spool directory " << path << ": " << ec.message() << '\n';
    return exit_failure;
  }
  std::uint64_t lwm = 0;
  {
    std::shared_ptr<spool::file> f;
    if (!fs.open(path + "/" + spool::checkpoint::file_name, spool::open_mode::read_only, f)) {
      std::array<char, 1024> buf{};
      std::size_t got = 0;
      if (!f->read_at(0, buf.data(), buf.size(), got)) {
        lwm = spool::checkpoint::parse(buf.data(), got);
      }
    }
  }
  std::vector<std::uint64_t> firsts;
  for (const std::string& name : names) {
    std::uint64_t first = 0;
    if (spool::parse_segment_file_name(name, first)) {
      firsts.push_back(first);
    }
  }
  std::sort(firsts.begin(), firsts.end());

  std::uint64_t shown = 0;
  std::uint64_t corrupt = 0;
  std::uint64_t unreadable = 0;
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
  std::uint64_t bytes = 0;
  std::string line;
  kafka::record r;
  for (std::size_t i = 0; i < firsts.size(); ++i) {
    const bool last = i + 1 == firsts.size();
    // The segment holding the lwm and those after it; earlier ones are wholly confirmed.
    if (!last && firsts[i + 1] <= lwm) {
      continue;
    }
    const std::string seg = path + "/" + spool::segment_file_name(firsts[i]);
    std::shared_ptr<spool::file> f;
    std::uint64_t size = 0;
    if (fs.open(seg, spool::open_mode::read_only, f) || f->size(size)) {
      continue;  // removed by the daemon meanwhile: confirmed
    }
    bytes += size;
    spool::segment_reader reader(f, size);
    bool in_corrupt = false;
    while (!reader.at_end()) {
      spool::frame_view frame;
      std::error_code ec;
      const spool::decode_status st = reader.next(frame, ec);
      if (ec) {
        err << "rtm-bridge: cannot read " << seg << ": " << ec.message() << '\n';
        return exit_failure;
      }
      if (st == spool::decode_status::ok) {
        in_corrupt = false;
        if (frame.seq < lwm) {
          continue;
        }
        if (!kafka::decode_spooled(r, frame.payload)) {
          ++unreadable;
          continue;
        }
        print_record(out, line, frame, r);
        first_seq = shown == 0 ? frame.seq : first_seq;
        last_seq = frame.seq;
        ++shown;
        continue;
      }
      if (st == spool::decode_status::incomplete && last) {
        break;  // the tail being written (or torn by a crash: the daemon's recovery cuts it)
      }
      if (!in_corrupt) {
        ++corrupt;
        in_corrupt = true;
      }
      if (!reader.resync(ec) && ec) {
        err << "rtm-bridge: cannot read " << seg << ": " << ec.message() << '\n';
        return exit_failure;
      }
    }
  }
  out.flush();
  err << "spool " << path << ": " << shown << " records not confirmed by Kafka";
  if (shown > 0) {
    err << " (seq " << first_seq << ".." << last_seq << ")";
  }
  err << ", checkpoint lwm " << lwm << ", " << firsts.size() << " segment file(s), " << bytes << " bytes read, "
      << corrupt << " corrupt region(s)";
  if (unreadable > 0) {
    err << ", " << unreadable << " record(s) of an unknown format";
  }
  err << '\n';
  return exit_ok;
}

}  // namespace rtm::app
