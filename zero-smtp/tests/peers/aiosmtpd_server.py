# aiosmtpd on PORT, saving each message it accepts as DIR/N.eml and its envelope as
# DIR/N.env (the peer of zero-smtp/tests/client.rs). With "tls" (CERT KEY), it offers
# STARTTLS and requires it; with "open" (CERT KEY), it offers STARTTLS without requiring
# it, and AUTH over TLS for alice:s3cret (the SMTP conformance suite's setting). Recipients starting "reject" are refused (550 5.1.1); those
# starting "later" are refused once (451 4.2.0), then accepted. Prints "ready" once listening.
import sys, time, os, ssl, asyncio
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

port, folder = int(sys.argv[1]), sys.argv[2]
count = 0

tried = set()

class Save:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject"):
            return "550 5.1.1 No such user"
        if address.startswith("later") and address not in tried:
            tried.add(address)
            return "451 4.2.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        global count
        count += 1
        # Written under a temporary name and renamed, the envelope first: a test that sees
        # N.eml sees all of it, and its N.env.
        def save(name, data):
            path = os.path.join(folder, name)
            with open(path + ".tmp", "wb") as f:
                f.write(data)
            os.replace(path + ".tmp", path)
        save(f"{count}.env", f"{envelope.mail_from}\n{' '.join(envelope.rcpt_tos)}\n{' '.join(envelope.mail_options)}\ntls={session.ssl is not None}\n".encode())
        save(f"{count}.eml", envelope.original_content or envelope.content)
        return f"250 2.0.0 saved as {count}"

kwargs = {}
if len(sys.argv) > 3 and sys.argv[3] == "tls":
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(sys.argv[4], sys.argv[5])
    kwargs = dict(tls_context=ctx, require_starttls=True)
elif len(sys.argv) > 3 and sys.argv[3] == "open":
    from aiosmtpd.smtp import AuthResult
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(sys.argv[4], sys.argv[5])

    def check(server, session, envelope, mechanism, auth_data):
        good = auth_data.login == b"alice" and auth_data.password == b"s3cret"
        return AuthResult(success=good, handled=False)

    kwargs = dict(tls_context=ctx, require_starttls=False, authenticator=check, auth_require_tls=True)
controller = Controller(Save(), hostname="127.0.0.1", port=port, enable_SMTPUTF8=True, **kwargs)
controller.start()
print("ready", flush=True)
try:
    while True:
        time.sleep(1)
finally:
    controller.stop()
