// A QuickFIX C++ counterparty for zero-fix's interoperability tests (QuickFIX 1.15, Debian's
// libquickfix-dev). Build: g++ -std=c++11 -O1 quickfix_peer.cpp -lquickfix -lpthread
//
//   quickfix_peer acceptor CONFIG        answers each NewOrderSingle with an ExecutionReport
//                                        (ExecType/OrdStatus New), runs until SIGTERM
//   quickfix_peer initiator CONFIG N     logs on, sends N NewOrderSingles (ClOrdID QF-1..N),
//                                        waits for each to come back (an ExecutionReport, or
//                                        the order itself from an echo), logs out
//   quickfix_peer bench CONFIG N WARMUP  round trips: one order at a time, the next sent from
//                                        the callback that receives the previous one's report;
//                                        prints RESULT impl=quickfix orders=N p50_us= p99_us=
//                                        p999_us= over the N after WARMUP
//
// It prints one line per event on stdout: LOGON, LOGOUT, ORDER <ClOrdID> <MsgSeqNum>,
// EXEC <ClOrdID> <MsgSeqNum>, ECHO <ClOrdID> <MsgSeqNum>, DONE.
#include <quickfix/Application.h>
#include <quickfix/FileLog.h>
#include <quickfix/FileStore.h>
#include <quickfix/Message.h>
#include <quickfix/Session.h>
#include <quickfix/SessionSettings.h>
#include <quickfix/SocketAcceptor.h>
#include <quickfix/SocketInitiator.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <vector>
#include <csignal>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>

static std::atomic<bool> stop(false);
static std::mutex out;

static void say(const std::string& line) {
  std::lock_guard<std::mutex> l(out);
  std::cout << line << std::endl;
}

class Peer : public FIX::Application {
 public:
  std::atomic<int> execs{0};
  std::atomic<bool> on{false};
  FIX::SessionID session;
  bool initiator = false;
  // Round-trip mode.
  bool bench = false;
  int total = 0, warmup = 0, sent = 0;
  std::chrono::steady_clock::time_point sent_at;
  std::vector<double> rtts;
  std::atomic<bool> finished{false};

  void order() {
    sent++;
    FIX::Message nos;
    nos.getHeader().setField(FIX::FIELD::MsgType, "D");
    nos.setField(FIX::FIELD::ClOrdID, "QF-" + std::to_string(sent));
    nos.setField(FIX::FIELD::Symbol, "ZERO");
    nos.setField(FIX::FIELD::Side, "1");
    nos.setField(FIX::FIELD::TransactTime, "20261207-09:30:00.000");
    nos.setField(FIX::FIELD::OrderQty, "100");
    nos.setField(FIX::FIELD::OrdType, "2");
    nos.setField(FIX::FIELD::Price, "10.25");
    sent_at = std::chrono::steady_clock::now();
    FIX::Session::sendToTarget(nos, session);
  }

  void onCreate(const FIX::SessionID& id) { session = id; }
  void onLogon(const FIX::SessionID&) {
    on = true;
    say("LOGON");
    if (bench) order();
  }
  void onLogout(const FIX::SessionID&) { on = false; say("LOGOUT"); }
  void toAdmin(FIX::Message&, const FIX::SessionID&) {}
  void toApp(FIX::Message&, const FIX::SessionID&) throw(FIX::DoNotSend) {}
  void fromAdmin(const FIX::Message&, const FIX::SessionID&)
      throw(FIX::FieldNotFound, FIX::IncorrectDataFormat, FIX::IncorrectTagValue, FIX::RejectLogon) {}
  void fromApp(const FIX::Message& m, const FIX::SessionID& id)
      throw(FIX::FieldNotFound, FIX::IncorrectDataFormat, FIX::IncorrectTagValue, FIX::UnsupportedMessageType) {
    std::string type = m.getHeader().getField(FIX::FIELD::MsgType);
    std::string seq = m.getHeader().getField(FIX::FIELD::MsgSeqNum);
    std::string clordid = m.isSetField(FIX::FIELD::ClOrdID) ? m.getField(FIX::FIELD::ClOrdID) : "-";
    if (type == "D" && initiator) {
      say("ECHO " + clordid + " " + seq);
      execs++;
    } else if (type == "D") {
      say("ORDER " + clordid + " " + seq);
      FIX::Message er;
      er.getHeader().setField(FIX::FIELD::MsgType, "8");
      er.setField(FIX::FIELD::OrderID, "QF-" + clordid);
      er.setField(FIX::FIELD::ClOrdID, clordid);
      er.setField(FIX::FIELD::ExecID, "X-" + clordid);
      er.setField(FIX::FIELD::ExecType, "0");
      er.setField(FIX::FIELD::OrdStatus, "0");
      er.setField(FIX::FIELD::Symbol, m.isSetField(FIX::FIELD::Symbol) ? m.getField(FIX::FIELD::Symbol) : "?");
      er.setField(FIX::FIELD::Side, m.isSetField(FIX::FIELD::Side) ? m.getField(FIX::FIELD::Side) : "1");
      er.setField(FIX::FIELD::LeavesQty, m.isSetField(FIX::FIELD::OrderQty) ? m.getField(FIX::FIELD::OrderQty) : "0");
      er.setField(FIX::FIELD::CumQty, "0");
      er.setField(FIX::FIELD::AvgPx, "0");
      FIX::Session::sendToTarget(er, id);
    } else if (type == "8" && bench) {
      auto rtt = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - sent_at).count();
      if (sent > warmup) rtts.push_back(rtt);
      if (sent < warmup + total)
        order();
      else
        finished = true;
    } else if (type == "8") {
      say("EXEC " + clordid + " " + seq);
      execs++;
    } else {
      throw FIX::UnsupportedMessageType();
    }
  }
};

static void on_signal(int) { stop = true; }

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: quickfix_peer acceptor|initiator CONFIG [N]" << std::endl;
    return 2;
  }
  std::string role = argv[1];
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  try {
    FIX::SessionSettings settings(argv[2]);
    Peer peer;
    FIX::FileStoreFactory store(settings);
    FIX::FileLogFactory log(settings);
    if (role == "acceptor") {
      FIX::SocketAcceptor acceptor(peer, store, settings, log);
      acceptor.start();
      say("LISTENING");
      while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      acceptor.stop();
      return 0;
    }
    int n = argc > 3 ? std::stoi(argv[3]) : 10;
    peer.initiator = true;
    if (role == "bench") {
      peer.bench = true;
      peer.total = n;
      peer.warmup = argc > 4 ? std::stoi(argv[4]) : 0;
      FIX::SocketInitiator initiator(peer, store, settings, log);
      initiator.start();
      auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(600);
      while (!peer.finished && !stop && std::chrono::steady_clock::now() < limit)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      initiator.stop();
      std::vector<double>& r = peer.rtts;
      if (r.empty()) return 1;
      std::sort(r.begin(), r.end());
      auto at = [&](double q) { return r[std::min(r.size() - 1, size_t(q * r.size()))]; };
      std::printf("RESULT impl=quickfix orders=%zu p50_us=%.1f p99_us=%.1f p999_us=%.1f\n", r.size(), at(0.5), at(0.99),
                  at(0.999));
      return 0;
    }
    FIX::SocketInitiator initiator(peer, store, settings, log);
    initiator.start();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!peer.on && !stop && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    for (int i = 1; i <= n && peer.on; i++) {
      FIX::Message nos;
      nos.getHeader().setField(FIX::FIELD::MsgType, "D");
      nos.setField(FIX::FIELD::ClOrdID, "QF-" + std::to_string(i));
      nos.setField(FIX::FIELD::Symbol, "ZERO");
      nos.setField(FIX::FIELD::Side, "1");
      nos.setField(FIX::FIELD::TransactTime, "20261207-09:30:00.000");
      nos.setField(FIX::FIELD::OrderQty, "100");
      nos.setField(FIX::FIELD::OrdType, "1");
      FIX::Session::sendToTarget(nos, peer.session);
    }
    while (peer.execs < n && !stop && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    say(peer.execs >= n ? "DONE" : "TIMEOUT");
    initiator.stop();
    return peer.execs >= n ? 0 : 1;
  } catch (std::exception& e) {
    std::cerr << "quickfix_peer: " << e.what() << std::endl;
    return 1;
  }
}
