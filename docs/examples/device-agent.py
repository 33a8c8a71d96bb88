#!/usr/bin/env python3
"""The device side of key delivery, for trying the API by hand (README "Onboard a device").

  device-agent.py keygen DIR           make an X25519 key pair in DIR (dev_sk.bin 0600, dev_pk.bin); print dev_pk (base64)
  device-agent.py open DIR FILE.json   open a deploy-materials answer with DIR's key: print the private key (PKCS#8 PEM)

Uses only the system's libsodium (crypto_box_seal_open) and libcrypto (AES-256-GCM) through ctypes.
"""
import base64, ctypes, ctypes.util, hashlib, json, os, subprocess, sys

sodium = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
crypto = ctypes.CDLL(ctypes.util.find_library("crypto") or "libcrypto.so.3")
if sodium.sodium_init() < 0:
    sys.exit("libsodium failed to initialise")


def keygen(d):
    pk, sk = ctypes.create_string_buffer(32), ctypes.create_string_buffer(32)
    sodium.crypto_box_keypair(pk, sk)
    os.makedirs(d, exist_ok=True)
    fd = os.open(os.path.join(d, "dev_sk.bin"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, sk.raw)
    os.close(fd)
    open(os.path.join(d, "dev_pk.bin"), "wb").write(pk.raw)
    print(base64.b64encode(pk.raw).decode())


def aes256gcm_open(key, nonce, ct, tag):
    crypto.EVP_CIPHER_CTX_new.restype = ctypes.c_void_p
    crypto.EVP_aes_256_gcm.restype = ctypes.c_void_p
    ctx = ctypes.c_void_p(crypto.EVP_CIPHER_CTX_new())
    out, n, fin = ctypes.create_string_buffer(len(ct) + 16), ctypes.c_int(), ctypes.c_int()
    ok = crypto.EVP_DecryptInit_ex(ctx, ctypes.c_void_p(crypto.EVP_aes_256_gcm()), None, None, None)
    ok &= crypto.EVP_CIPHER_CTX_ctrl(ctx, 0x9, len(nonce), None)  # EVP_CTRL_GCM_SET_IVLEN
    ok &= crypto.EVP_DecryptInit_ex(ctx, None, None, key, nonce)
    ok &= crypto.EVP_DecryptUpdate(ctx, out, ctypes.byref(n), ct, len(ct))
    ok &= crypto.EVP_CIPHER_CTX_ctrl(ctx, 0x11, len(tag), tag)  # EVP_CTRL_GCM_SET_TAG
    ok &= crypto.EVP_DecryptFinal_ex(ctx, ctypes.byref(out, n.value), ctypes.byref(fin))
    crypto.EVP_CIPHER_CTX_free(ctx)
    if ok != 1:
        sys.exit("AES-256-GCM: the key does not open (wrong data key or tampered)")
    return out.raw[: n.value]


def open_materials(d, path):
    doc = json.load(open(path))
    m = doc.get("data", doc)
    pk = open(os.path.join(d, "dev_pk.bin"), "rb").read()
    sk = open(os.path.join(d, "dev_sk.bin"), "rb").read()
    if m.get("enc_scheme", "aes256gcm").lower() == "plaintext":
        der = base64.b64decode(m["private_key_der_b64"])
    else:
        fp = base64.b64decode(m["device_keyfp_b64"])
        if fp != hashlib.blake2b(pk, digest_size=32).digest():
            sys.exit("device_keyfp_b64 is not this device's key")
        sealed = base64.b64decode(m["enc_data_key_b64"])
        data_key = ctypes.create_string_buffer(len(sealed) - 48)
        if sodium.crypto_box_seal_open(data_key, sealed, ctypes.c_ulonglong(len(sealed)), pk, sk) != 0:
            sys.exit("the sealed data key does not open with this device's key")
        der = aes256gcm_open(data_key.raw, base64.b64decode(m["privkey_nonce_b64"]),
                             base64.b64decode(m["enc_privkey_b64"]), base64.b64decode(m["privkey_tag_b64"]))
    sys.stdout.write(subprocess.run(["openssl", "pkey", "-inform", "DER"], input=der, capture_output=True,
                                    check=True).stdout.decode())


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "keygen":
        keygen(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "open":
        open_materials(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
