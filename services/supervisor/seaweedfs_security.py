"""The `security.toml` that closes the embedded SeaweedFS' side doors.

`weed mini` serves S3 with signatures (its admin identity comes from the AWS variables), but
its other servers answer anyone on loopback, which is every process of the machine: the filer's
HTTP API reads and writes every bucket, and the master, volume and filer gRPC ports take any
caller. Seen against `weed mini` 4.48 before this file: a plain GET of
`http://127.0.0.1:<filer port>/buckets/<bucket>/<key>` returned the object.

So, in the same config folder as `notification.toml` (`-config_dir`):
- JWTs signed with keys of this installation for the filer's and the volume server's HTTP,
  reads and writes (`wrong jwt`, 401, without one); SeaweedFS signs its own internal calls;
- mutual TLS on every gRPC port, with a CA generated on the first start: a caller without a
  certificate of that CA is refused in the handshake.

The master's HTTP API still hands out file ids (`/dir/assign`); writing with one needs the
volume JWT, and reading any object needs the filer's. Kept across restarts, like the other
generated secrets.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.common.private_files import write_private
from services.supervisor.generated_secrets import generated_secret

SECURITY_FILE = "security.toml"
COMMON_NAME = "forgeline-seaweedfs"
CERT_DAYS = 3650
# Every gRPC role `weed scaffold -config=security` lists: the servers and the client side.
GRPC_SERVERS = (
    "master",
    "volume",
    "filer",
    "s3",
    "admin",
    "worker",
    "msg_broker",
    "msg_agent",
    "mq",
)
JWT_SECTIONS = ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")


@dataclass(frozen=True)
class Tls:
    ca: Path
    cert: Path
    key: Path


def ensure_tls(folder: Path) -> Tls:
    """A CA and one certificate it signed, for servers and clients alike (they are one
    program): made once, kept."""
    tls = Tls(folder / "ca.crt", folder / "node.crt", folder / "node.key")
    if tls.ca.exists() and tls.cert.exists() and tls.key.exists():
        return tls
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    valid = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=CERT_DAYS))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Forgeline object store CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, COMMON_NAME)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    # The CA's key is not kept: nothing else is ever signed with it.
    write_private(
        tls.key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    write_private(tls.cert, cert.public_bytes(serialization.Encoding.PEM))
    write_private(tls.ca, ca.public_bytes(serialization.Encoding.PEM))
    return tls


def security_toml(jwt_keys: dict[str, str], tls: Tls) -> str:
    lines = ["# Written by Forgeline (services/supervisor/seaweedfs_security.py)."]
    for section in JWT_SECTIONS:
        lines += [f"[{section}]", f'key = "{jwt_keys[section]}"', "expires_after_seconds = 10"]
    lines += ["[grpc]", f'ca = "{tls.ca}"']
    for role in GRPC_SERVERS:
        lines += [
            f"[grpc.{role}]",
            f'cert = "{tls.cert}"',
            f'key = "{tls.key}"',
            f'allowed_commonNames = "{COMMON_NAME}"',
        ]
    lines += ["[grpc.client]", f'cert = "{tls.cert}"', f'key = "{tls.key}"', ""]
    return "\n".join(lines)


def write_security_config(config_dir: Path, secrets_dir: Path) -> Path:
    """`config_dir/security.toml` (0600), with keys and certificates kept in `secrets_dir`."""
    keys = {
        section: generated_secret(secrets_dir / f"{section.replace('.', '-')}.key")
        for section in JWT_SECTIONS
    }
    tls = ensure_tls(secrets_dir / "tls")
    path = config_dir / SECURITY_FILE
    write_private(path, security_toml(keys, tls))
    return path
