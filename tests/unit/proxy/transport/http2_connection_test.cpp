// Http2Connection against an independent peer: an nghttp2 client session. Requests and answers
// cross intact; every limit is enforced with the protocol's own answer; the connection never
// holds more than its budget, and its window reopens as bytes are released.
#include "http2_connection.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "nghttp2_client.h"

namespace xks::proxy {
namespace {

using test::ClientStream;
using Client = test::Nghttp2Client;

class Http2ConnectionTest : public ::testing::Test {
 protected:
  void start(HttpLimits limits) {
    limits_ = limits;
    server_ = std::make_unique<Http2Connection>(
        limits_, kPhaseTimeout,
        [this](std::int32_t id, HttpRequest request) {
          requests_[id] = std::move(request);
          if (answer_at_once_)
            pending_.push_back(id);
        },
        [this](HttpRefusal reason) { refusals_.push_back(reason); },
        [](HttpRefusal reason) {
          // What the XKS layer renders is its own business; the status is what matters here.
          return HttpResponse{reason == HttpRefusal::kBodyBytes ? 413 : 431, "refused"};
        });
  }

  // Moves bytes both ways until neither side has anything to say.
  void pump() {
    for (int round = 0; round < 1000; ++round) {
      std::string to_server;
      const std::uint8_t* data = nullptr;
      for (ssize_t n; (n = nghttp2_session_mem_send(client_.session, &data)) > 0;)
        to_server.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
      if (!to_server.empty()) {
        alive_ = server_->receive(
                     {reinterpret_cast<const std::uint8_t*>(to_server.data()), to_server.size()},
                     now_) &&
                 alive_;
      }
      for (std::int32_t id : std::exchange(pending_, {}))
        server_->answer(id, {200, "answer:" + requests_[id].body.substr(0, 8)});
      std::string to_client;
      server_->send(to_client, 1 << 20);
      if (!to_client.empty()) {
        nghttp2_session_mem_recv(client_.session,
                                 reinterpret_cast<const std::uint8_t*>(to_client.data()),
                                 to_client.size());
      }
      if (to_server.empty() && to_client.empty())
        return;
    }
    FAIL() << "the exchange did not settle";
  }

  static constexpr std::chrono::seconds kPhaseTimeout{5};

  HttpLimits limits_;
  Http2Connection::Clock::time_point now_{std::chrono::hours(1)};  // the test's clock
  Client client_;
  std::unique_ptr<Http2Connection> server_;
  std::map<std::int32_t, HttpRequest> requests_;
  std::vector<std::int32_t> pending_;
  std::vector<HttpRefusal> refusals_;
  bool answer_at_once_ = true;
  bool alive_ = true;
};

TEST_F(Http2ConnectionTest, RequestsAndAnswersCrossIntact) {
  start({});
  std::int32_t a = client_.request("/kms/xks/v1/health", "{\"a\":1}");
  std::int32_t b = client_.request("/kms/xks/v1/keys/k/encrypt", std::string(50000, 'b'));
  pump();
  ASSERT_EQ(requests_.size(), 2u);
  EXPECT_EQ(requests_[a].method, "POST");
  EXPECT_EQ(requests_[a].target, "/kms/xks/v1/health");
  EXPECT_EQ(requests_[a].body, "{\"a\":1}");
  EXPECT_NE(std::find(requests_[a].headers.begin(), requests_[a].headers.end(),
                      std::pair<std::string, std::string>("host", "h:1")),
            requests_[a].headers.end());
  EXPECT_EQ(requests_[b].body.size(), 50000u);
  EXPECT_EQ(client_.streams[a].status, 200);
  EXPECT_EQ(client_.streams[a].answer, "answer:{\"a\":1}");
  EXPECT_EQ(client_.streams[b].answer, "answer:bbbbbbbb");
  EXPECT_EQ(server_->buffered_bytes(), 0u);
  EXPECT_TRUE(refusals_.empty());
}

TEST_F(Http2ConnectionTest, AHeaderListOverTheLimitIsAnswered431AndNotKept) {
  HttpLimits limits;
  limits.max_header_bytes = 4096;
  start(limits);
  std::int32_t id = client_.request("/x", "{}", true, {{"x-big", std::string(5000, 'a')}});
  std::int32_t fine = client_.request("/y", "{}");
  pump();
  EXPECT_EQ(client_.streams[id].status, 431);
  EXPECT_EQ(requests_.count(id), 0u);
  EXPECT_EQ(client_.streams[fine].status, 200);
  ASSERT_EQ(refusals_.size(), 1u);
  EXPECT_EQ(refusals_[0], HttpRefusal::kHeaderBytes);
}

TEST_F(Http2ConnectionTest, AHeaderListFarOverTheLimitIsResetWithoutDecodingTheRest) {
  HttpLimits limits;
  limits.max_header_bytes = 4096;
  start(limits);
  // Past twice the limit nghttp2 stops checking fields (an HPACK bomb would cost CPU there).
  std::int32_t id = client_.request("/x", "{}", true, {{"x-big", std::string(9000, 'a')}});
  std::int32_t fine = client_.request("/y", "{}");
  pump();
  EXPECT_EQ(client_.streams[id].closed_with, static_cast<std::uint32_t>(NGHTTP2_ENHANCE_YOUR_CALM));
  EXPECT_EQ(client_.streams[fine].status, 200);
  EXPECT_EQ(server_->buffered_bytes(), 0u);
}

TEST_F(Http2ConnectionTest, ABodyOverTheLimitIsAnswered413AndTheRestDropped) {
  start({});
  std::int32_t id = client_.request("/x", std::string(300000, 'z'));
  pump();
  EXPECT_EQ(client_.streams[id].status, 413);
  EXPECT_EQ(requests_.count(id), 0u);
  EXPECT_EQ(server_->buffered_bytes(), 0u);
  // The dropped bytes went back to the window: the connection still carries requests.
  std::int32_t next = client_.request("/y", std::string(60000, 'y'));
  pump();
  EXPECT_EQ(client_.streams[next].status, 200);
}

TEST_F(Http2ConnectionTest, ADeclaredLengthOverTheLimitIsAnswered413BeforeTheBody) {
  start({});
  // Fields after content-length once made the check read freed memory (caught by ASan).
  std::int32_t id = client_.request("/x", std::string(100, 'd'), /*end=*/false,
                                    {{"content-length", "100000"}, {"x-after", "1"}});
  pump();
  EXPECT_EQ(client_.streams[id].status, 413);
  EXPECT_EQ(requests_.count(id), 0u);
  EXPECT_EQ(server_->buffered_bytes(), 0u);
}

TEST_F(Http2ConnectionTest, UnfinishedBodiesStopAtTheConnectionBudget) {
  HttpLimits limits;
  limits.http2_connection_buffer_bytes = 100000;
  start(limits);
  std::vector<std::int32_t> ids;
  for (int i = 0; i < 20; ++i)
    ids.push_back(client_.request("/x", std::string(30000, 'u'), /*end=*/false));
  pump();
  EXPECT_TRUE(requests_.empty());
  // Without a content-length each stream reserves max_body_bytes: one fits, the rest are
  // refused and may be retried.
  EXPECT_LE(server_->buffered_bytes(), limits.http2_connection_buffer_bytes);
  EXPECT_GT(server_->buffered_bytes(), limits.max_body_bytes);
  std::size_t refused = 0;
  for (std::int32_t id : ids)
    refused += client_.streams[id].closed_with == NGHTTP2_REFUSED_STREAM;
  EXPECT_EQ(refused, ids.size() - 1);
  // Resetting the streams gives their bytes back; a new request then goes through.
  for (std::int32_t id : ids)
    nghttp2_submit_rst_stream(client_.session, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
  pump();
  EXPECT_EQ(server_->buffered_bytes(), 0u);
  std::int32_t next = client_.request("/y", std::string(60000, 'y'));
  pump();
  EXPECT_EQ(client_.streams[next].status, 200);
}

TEST_F(Http2ConnectionTest, ConcurrentLargeBodiesAreAnsweredOrRefusedNeverStalled) {
  start({});  // budget 256 KiB, bodies up to 64 KiB
  for (bool declare_length : {true, false}) {
    std::vector<std::int32_t> ids;
    for (int i = 0; i < 12; ++i) {
      std::vector<std::pair<std::string, std::string>> extra;
      if (declare_length)
        extra.emplace_back("content-length", "60000");
      ids.push_back(client_.request("/x", std::string(60000, 'L'), true, extra));
    }
    pump();
    std::size_t answered = 0, refused = 0;
    for (std::int32_t id : ids) {
      answered += client_.streams[id].status == 200;
      refused += client_.streams[id].closed_with == NGHTTP2_REFUSED_STREAM;
    }
    EXPECT_EQ(answered + refused, ids.size()) << "declared: " << declare_length;
    EXPECT_GE(answered, 3u) << "declared: " << declare_length;
    EXPECT_EQ(server_->buffered_bytes(), 0u);
  }
}

TEST_F(Http2ConnectionTest, HeadersBeyondTheBudgetAreRefusedWithRefusedStream) {
  HttpLimits limits;
  limits.http2_connection_buffer_bytes = 65535;
  start(limits);
  answer_at_once_ = false;  // requests stay at the handler, holding their headers
  std::vector<std::int32_t> ids;
  for (int i = 0; i < 40; ++i)
    ids.push_back(client_.request("/x", "", true, {{"x-h", std::string(3000, 'h')}}));
  pump();
  std::size_t refused = 0;
  for (std::int32_t id : ids)
    refused += client_.streams[id].closed_with == NGHTTP2_REFUSED_STREAM;
  EXPECT_GT(refused, 10u);
  EXPECT_GT(requests_.size(), 10u);
  EXPECT_EQ(requests_.size() + refused, ids.size());
  EXPECT_LE(server_->buffered_bytes(), limits.http2_connection_buffer_bytes);
  EXPECT_EQ(std::count(refusals_.begin(), refusals_.end(), HttpRefusal::kConnectionBufferBytes),
            static_cast<long>(refused));
}

TEST_F(Http2ConnectionTest, RequestsAtTheHandlerAreCappedEvenWhenTheClientResetsThem) {
  HttpLimits limits;
  limits.http2_max_concurrent_streams = 4;
  start(limits);
  answer_at_once_ = false;
  std::vector<std::int32_t> ids;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 4; ++i) {
      std::int32_t id = client_.request("/x", "");
      ids.push_back(id);
      pump();
      nghttp2_submit_rst_stream(client_.session, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
      pump();
    }
  }
  EXPECT_EQ(requests_.size(), 4u);  // the rest were refused while those four were pending
  EXPECT_EQ(std::count(refusals_.begin(), refusals_.end(), HttpRefusal::kStreamsInFlight), 8);
}

TEST_F(Http2ConnectionTest, AHalfSentRequestIsResetWhenItsPhaseTimesOut) {
  start(HttpLimits{});
  std::int32_t id = client_.request("/x", std::string(100, 'a'), /*end=*/false);
  pump();
  ASSERT_TRUE(requests_.empty());
  EXPECT_GT(server_->buffered_bytes(), 0u);
  // The header block has ended: the body is due one phase later, however many other frames
  // (PINGs here) keep the connection busy.
  ASSERT_EQ(server_->next_due(), now_ + kPhaseTimeout);
  for (int i = 0; i < 3; ++i) {
    now_ += std::chrono::seconds(1);
    nghttp2_submit_ping(client_.session, NGHTTP2_FLAG_NONE, nullptr);
    pump();
    EXPECT_EQ(server_->expire(now_), 0u);
  }
  now_ += std::chrono::seconds(2);
  EXPECT_EQ(server_->expire(now_), 1u);
  pump();
  EXPECT_EQ(client_.streams[id].closed_with, static_cast<std::uint32_t>(NGHTTP2_CANCEL));
  EXPECT_EQ(server_->buffered_bytes(), 0u);
  EXPECT_TRUE(server_->idle());
  EXPECT_FALSE(server_->next_due());
  EXPECT_EQ(refusals_, std::vector<HttpRefusal>{HttpRefusal::kRequestTimeout});
  // The connection goes on serving.
  std::int32_t next = client_.request("/y", "body");
  pump();
  EXPECT_EQ(client_.streams[next].status, 200);
}

TEST_F(Http2ConnectionTest, ARequestAtTheHandlerIsNotTimedOut) {
  start(HttpLimits{});
  answer_at_once_ = false;
  client_.request("/x", "body");
  pump();
  ASSERT_EQ(requests_.size(), 1u);
  EXPECT_FALSE(server_->next_due());
  EXPECT_EQ(server_->expire(now_ + std::chrono::hours(1)), 0u);
  EXPECT_FALSE(server_->idle());
}

TEST_F(Http2ConnectionTest, RapidResetEndsTheConnectionWithEnhanceYourCalm) {
  HttpLimits limits;
  limits.http2_max_resets_per_second = 10;
  start(limits);
  answer_at_once_ = false;
  auto open_and_reset = [this] {
    std::int32_t id = client_.request("/x", "", /*end=*/false);
    pump();
    nghttp2_submit_rst_stream(client_.session, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    pump();
  };
  // Ten resets a second, second after second, are within the limit...
  for (int second = 0; second < 3; ++second) {
    for (int i = 0; i < 10; ++i)
      open_and_reset();
    ASSERT_TRUE(alive_);
    now_ += std::chrono::seconds(1);
  }
  // ...the eleventh in one second is not.
  for (int i = 0; i < 11 && alive_; ++i)
    open_and_reset();
  EXPECT_FALSE(alive_);
  EXPECT_EQ(refusals_.back(), HttpRefusal::kResetFlood);
  std::string goaway;
  server_->send(goaway, 1 << 20);
  EXPECT_TRUE(requests_.empty());
}

TEST_F(Http2ConnectionTest, TheCapIsCheckedAgainWhenARequestEnds) {
  HttpLimits limits;
  limits.http2_max_concurrent_streams = 2;
  start(limits);
  answer_at_once_ = false;
  std::int32_t open = client_.request("/a", "{}", /*end=*/false);  // admitted, body unfinished
  std::int32_t first = client_.request("/b", "");
  pump();
  nghttp2_submit_rst_stream(client_.session, NGHTTP2_FLAG_NONE, first, NGHTTP2_CANCEL);
  std::int32_t second = client_.request("/c", "");
  pump();
  ASSERT_EQ(requests_.size(), 2u);  // first (reset, still at the handler) and second
  // Ending the open stream now would make three at the handler: it is refused.
  client_.bodies.front()->end = true;
  nghttp2_session_resume_data(client_.session, open);
  pump();
  EXPECT_EQ(requests_.count(open), 0u);
  EXPECT_EQ(client_.streams[open].closed_with, static_cast<std::uint32_t>(NGHTTP2_REFUSED_STREAM));
  EXPECT_EQ(std::count(refusals_.begin(), refusals_.end(), HttpRefusal::kStreamsInFlight), 1);
  server_->answer(first, {200, "{}"});
  server_->answer(second, {200, "{}"});
  pump();
  EXPECT_EQ(client_.streams[second].status, 200);
  EXPECT_EQ(server_->buffered_bytes(), 0u);
}

TEST_F(Http2ConnectionTest, ASmallBodyGivesBackTheRestOfItsReservation) {
  start({});
  answer_at_once_ = false;
  std::int32_t id = client_.request("/x", std::string(200, 's'));  // no content-length
  pump();
  ASSERT_EQ(requests_.count(id), 1u);
  // At the handler it holds its header fields and 200 bytes, not max_body_bytes.
  EXPECT_LT(server_->buffered_bytes(), 1024u);
  server_->answer(id, {200, "{}"});
  pump();
  EXPECT_EQ(server_->buffered_bytes(), 0u);
}

TEST_F(Http2ConnectionTest, AnAnswerAfterTheClientResetTheStreamIsDropped) {
  start({});
  answer_at_once_ = false;
  std::int32_t id = client_.request("/x", std::string(1000, 'r'));
  pump();
  ASSERT_EQ(requests_.count(id), 1u);
  EXPECT_GT(server_->buffered_bytes(), 1000u);  // held until answered
  nghttp2_submit_rst_stream(client_.session, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
  pump();
  server_->answer(id, {200, "late"});
  pump();
  EXPECT_EQ(client_.streams[id].status, 0);
  EXPECT_EQ(server_->buffered_bytes(), 0u);
}

TEST_F(Http2ConnectionTest, GarbageEndsTheConnectionWithGoaway) {
  start({});
  std::string garbage = "GET / HTTP/1.1\r\n\r\n";
  EXPECT_FALSE(
      server_->receive({reinterpret_cast<const std::uint8_t*>(garbage.data()), garbage.size()}));
  std::string out;
  server_->send(out, 1 << 20);
  // Frames are a 3-byte length, a type byte, flags, a stream id: find the GOAWAY (type 7).
  bool goaway = false;
  for (std::size_t at = 0; at + 9 <= out.size();) {
    std::size_t length = (std::size_t{static_cast<std::uint8_t>(out[at])} << 16) |
                         (std::size_t{static_cast<std::uint8_t>(out[at + 1])} << 8) |
                         static_cast<std::uint8_t>(out[at + 2]);
    goaway = goaway || out[at + 3] == 0x7;
    at += 9 + length;
  }
  EXPECT_TRUE(goaway);
  ASSERT_FALSE(refusals_.empty());
  EXPECT_EQ(refusals_.back(), HttpRefusal::kMalformed);
}

}  // namespace
}  // namespace xks::proxy
