// Fuzz target: what the spool reads back from disk (src/spool/format.hpp, segment_reader, segment_log's recovery
// and reader, kafka/spooled_record). The input is the content of a segment file, as a crash, a power loss or a bad
// disk may leave it. Invariants: recovery and reading terminate, every record returned is a frame that checks and
// re-encodes to exactly its bytes, sequence numbers come back increasing, and a payload that decodes as a record
// re-encodes to itself.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "kafka/record.hpp"
#include "kafka/spooled_record.hpp"
#include "spool/format.hpp"
#include "spool/segment_log.hpp"
#include "spool/segment_reader.hpp"
#include "tests/fuzz/targets.hpp"
#include "tests/support/model_file_system.hpp"

namespace rtm::fuzz {
namespace {

#define CHECK_SPOOL(condition) RTM_FUZZ_CHECK("spool_segment", condition)

void check_frame(const spool::frame_view& f, std::string_view raw) {
  std::string again;
  spool::encode_frame(again, f.seq, f.received_at_ns, f.flags, f.payload);
  CHECK_SPOOL(again == raw.substr(0, f.size));
  kafka::record r;
  if (kafka::decode_spooled(r, f.payload)) {
    std::string payload;
    kafka::encode_spooled(r, payload);
    CHECK_SPOOL(payload == f.payload);
  }
}

}  // namespace

void spool_segment(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data),
                          size);  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast)

  // The reader alone, with resync: bounded by the input's size.
  {
    test::model_file_system fs;
    std::shared_ptr<spool::file> f;
    CHECK_SPOOL(!fs.open("/s/x.seg", spool::open_mode::create_new, f));
    CHECK_SPOOL(!f->write_at(0, bytes.data(), bytes.size()));
    spool::segment_reader reader(f, bytes.size());
    std::size_t steps = 0;
    while (!reader.at_end()) {
      CHECK_SPOOL(++steps <= bytes.size() + 1);
      const std::uint64_t at = reader.offset();
      spool::frame_view frame;
      std::error_code ec;
      const spool::decode_status st = reader.next(frame, ec);
      CHECK_SPOOL(!ec);
      if (st == spool::decode_status::ok) {
        CHECK_SPOOL(reader.offset() == at + frame.size);
        check_frame(frame, std::string_view(bytes).substr(at));
        continue;
      }
      CHECK_SPOOL(reader.offset() == at);
      const bool found = reader.resync(ec);
      CHECK_SPOOL(!ec);
      CHECK_SPOOL(reader.offset() > at);
      CHECK_SPOOL(found || reader.at_end());
    }
  }

  // The same bytes as a spool's only segment: recovery (the tail scan and cut), then the reader.
  for (const bool sealed : {false, true}) {
    test::model_file_system fs;
    {
      std::shared_ptr<spool::file> f;
      CHECK_SPOOL(!fs.open("/s/" + spool::segment_file_name(1), spool::open_mode::create_new, f));
      CHECK_SPOOL(!f->write_at(0, bytes.data(), bytes.size()));
      if (sealed) {
        // A later, empty segment makes this one sealed: read lazily, corruption skipped instead of cut.
        CHECK_SPOOL(!fs.open("/s/" + spool::segment_file_name(UINT64_MAX / 2), spool::open_mode::create_new, f));
        std::string one;
        spool::encode_frame(one, UINT64_MAX / 2, 0, 0, "z");
        CHECK_SPOOL(!f->write_at(0, one.data(), one.size()));
      }
    }
    spool::segment_log log(fs, {.dir = "/s", .segment_size = 1 << 16, .max_size = 1 << 20, .min_free = 0});
    const spool::recovery_report report = log.open(0);
    CHECK_SPOOL(report.next_seq >= 1);
    std::uint64_t last = 0;
    std::size_t records = 0;
    spool::frame_view frame;
    while (log.read_next(frame) == spool::segment_log::read_result::record) {
      CHECK_SPOOL(++records <= bytes.size() / spool::frame_overhead + 2);
      CHECK_SPOOL(frame.seq > last);
      last = frame.seq;
    }
    CHECK_SPOOL(log.at_end());
    std::uint64_t seq = 0;
    CHECK_SPOOL(log.append(0, "after", seq) == spool::segment_log::append_result::ok);
    CHECK_SPOOL(seq >= report.next_seq);
  }
}

}  // namespace rtm::fuzz

#ifdef RTM_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  rtm::fuzz::spool_segment(data, size);
  return 0;
}
#endif
