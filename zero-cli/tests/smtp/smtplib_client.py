# python smtplib against `zero smtp serve` (the peer of zero-cli/tests/smtp.rs).
# Usage: smtplib_client.py PORT MODE   (MODE: plain | utf8 | tls-auth | many)
# Prints one line per message: "queued ID" (from the 250).
import smtplib, ssl, sys
from email.message import EmailMessage
from email import policy

port, mode = int(sys.argv[1]), sys.argv[2]

def send(s, i, sender, to, options=()):
    m = EmailMessage(policy=policy.SMTPUTF8 if "SMTPUTF8" in options else policy.SMTP)
    m["From"], m["To"], m["Subject"] = sender, to, f"message {i}"
    m.set_content(f"body of message {i}\n.leading dot\n")
    code, reply = s.mail(sender, list(options))
    assert code == 250, (code, reply)
    code, reply = s.rcpt(to)
    assert code == 250, (code, reply)
    code, reply = s.data(m.as_bytes())
    assert code == 250, (code, reply)
    print("queued", reply.decode().split("queued as ")[-1], flush=True)

with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
    s.ehlo()
    to = "b@zero.test"
    if mode == "tls-auth":
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        s.starttls(context=ctx)
        s.ehlo()
        try:
            s.login("alice", "wrong")
        except smtplib.SMTPAuthenticationError as e:
            print("refused", e.smtp_code, flush=True)
        s.login("alice", "s3cret")
        to = "anyone@elsewhere.test"
    if mode == "utf8":
        send(s, 0, "用户@client.test", "δοκιμή@zero.test", ["SMTPUTF8"])
    else:
        for i in range(20 if mode == "many" else 1):
            send(s, i, "a@client.test", to)
