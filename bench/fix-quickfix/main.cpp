// QuickFIX C++ (Debian's libquickfix-dev) parsing and serializing the same NewOrderSingle and
// ExecutionReport as bench/fix-codecs, in the same loop. Prints RESULT lines for bench/fix.sh.
// Build: g++ -std=c++11 -O2 main.cpp -lquickfix -lpthread
//
//   parse:     FIX::Message(string, validate = true) (BodyLength and CheckSum checked, no
//              data dictionary), then ClOrdID and the price or quantity read
//   serialize: a FIX::Message of the same fields, toString() (BodyLength and CheckSum)
#include <quickfix/Message.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

static const char* NOS =
    "8=FIX.4.4|9=000|35=D|49=CLIENT|56=BROKER|34=215|52=20261207-09:30:00.123|11=ORD-10001|"
    "1=ACCT-7|21=1|55=ZERO|54=1|60=20261207-09:30:00.123|38=100|40=2|44=10.25|59=0|10=000|";
static const char* ER =
    "8=FIX.4.4|9=000|35=8|49=BROKER|56=CLIENT|34=311|52=20261207-09:30:00.125|37=OID-55|11=ORD-10001|"
    "17=EXEC-991|150=0|39=0|55=ZERO|54=1|38=100|44=10.25|32=0|31=0|151=100|14=0|6=0|"
    "60=20261207-09:30:00.124|10=000|";

typedef std::vector<std::pair<int, std::string>> Fields;

static Fields fields(const std::string& text) {
  Fields out;
  size_t at = 0;
  while (at < text.size()) {
    size_t bar = text.find('|', at);
    std::string f = text.substr(at, bar - at);
    size_t eq = f.find('=');
    int tag = std::atoi(f.substr(0, eq).c_str());
    if (tag != 8 && tag != 9 && tag != 10 && tag != 35) out.push_back(std::make_pair(tag, f.substr(eq + 1)));
    at = bar + 1;
  }
  return out;
}

static FIX::Message build(const char* type, const Fields& fs) {
  FIX::Message m;
  m.getHeader().setField(FIX::FIELD::BeginString, "FIX.4.4");
  m.getHeader().setField(FIX::FIELD::MsgType, type);
  for (auto& f : fs) {
    bool header = f.first == 49 || f.first == 56 || f.first == 34 || f.first == 52;
    if (header)
      m.getHeader().setField(f.first, f.second);
    else
      m.setField(f.first, f.second);
  }
  return m;
}

template <class F>
static double timed(long n, F f) {
  for (long i = 0; i < n / 10; i++) f();
  auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < n; i++) f();
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
  return double(ns) / n;
}

static volatile size_t sink;

int main(int argc, char** argv) {
  long n = argc > 1 ? std::atol(argv[1]) : 1000000;
  Fields nos_fields = fields(NOS), er_fields = fields(ER);
  // QuickFIX fills in BodyLength and CheckSum: the wire bytes of the same fields.
  std::string nos = build("D", nos_fields).toString(), er = build("8", er_fields).toString();
  struct Case {
    const char* message;
    const char* op;
    double ns;
  } cases[4] = {
      {"NewOrderSingle", "parse", timed(n, [&] {
         FIX::Message m(nos, true);
         sink += m.getField(11).size() + m.getField(44).size();
       })},
      {"ExecutionReport", "parse", timed(n, [&] {
         FIX::Message m(er, true);
         sink += m.getField(11).size() + m.getField(151).size();
       })},
      {"NewOrderSingle", "serialize", timed(n, [&] { sink += build("D", nos_fields).toString().size(); })},
      {"ExecutionReport", "serialize", timed(n, [&] { sink += build("8", er_fields).toString().size(); })},
  };
  for (auto& c : cases) std::printf("RESULT impl=quickfix message=%s op=%s ns=%.1f\n", c.message, c.op, c.ns);
  return 0;
}
