// A QuickFIX C++ counterparty for zero-fix's interoperability tests (QuickFIX 1.15, Debian's
// libquickfix-dev). Build: g++ -std=c++11 -O1 quickfix_peer.cpp -lquickfix -lpthread
//
//   quickfix_peer acceptor CONFIG        answers each NewOrderSingle with an ExecutionReport
//                                        (ExecType/OrdStatus New), runs until SIGTERM
//   quickfix_peer initiator CONFIG N     logs on, sends N NewOrderSingles (ClOrdID QF-1..N),
//                                        waits for each to come back (an ExecutionReport, or
//                                        the order itself from an echo), logs out
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

#include <atomic>
#include <chrono>
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

  void onCreate(const FIX::SessionID& id) { session = id; }
  void onLogon(const FIX::SessionID&) { on = true; say("LOGON"); }
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
