package nats

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/tda-dev/tda/sdk"
)

// Credential files are checked when the block is decoded (tda validate, and before the
// plugin starts), so a missing, unreadable or wrong file is a diagnostic on its attribute,
// with what the file should hold. The client reads them again when it connects: a file that
// changed since fails then, and the sink's or source's state says why (connProblem).

// maxCredentialFile bounds what is read of a credential file (a .creds file is about 1 KiB).
const maxCredentialFile = 1 << 20

func readCredentialFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if st.Size() > maxCredentialFile {
		return nil, fmt.Errorf("%s is %d bytes; a credential file is a few KiB", path, st.Size())
	}
	return os.ReadFile(path)
}

// checkCredentialFiles checks every credential file the block names; now is the clock
// against which a user JWT's expiry is checked.
func checkCredentialFiles(c *sdk.Config, cc connConfig, now time.Time) error {
	if cc.nkeySeed != "" {
		if err := checkSeedFile(cc.nkeySeed); err != nil {
			return c.Errorf("nkey_seed_file", "%v", err)
		}
	}
	if cc.credsFile != "" {
		if err := checkCredsFile(cc.credsFile, now); err != nil {
			return c.Errorf("creds_file", "%v", err)
		}
	}
	if cc.tlsCA != "" {
		b, err := readCredentialFile(cc.tlsCA)
		if err != nil {
			return c.Errorf("tls_ca", "cannot read the CA file: %v", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(b) {
			return c.Errorf("tls_ca", "%s holds no PEM certificate (-----BEGIN CERTIFICATE-----): name the CA that signed the servers' certificates", cc.tlsCA)
		}
	}
	if cc.tlsCert != "" {
		if _, err := tls.LoadX509KeyPair(cc.tlsCert, cc.tlsKey); err != nil {
			return c.Errorf("tls_cert", "cannot load the client certificate %s with its key %s: %v", cc.tlsCert, cc.tlsKey, err)
		}
	}
	return nil
}

// checkSeedFile checks that path holds a user nkey seed (SU...).
func checkSeedFile(path string) error {
	b, err := readCredentialFile(path)
	if err != nil {
		return fmt.Errorf("cannot read the nkey seed: %v", err)
	}
	kp, err := nkeys.ParseDecoratedNKey(b)
	if err != nil {
		return fmt.Errorf("%s holds no nkey seed (%v): it should hold a user seed, SU... (nsc generate nkey -u)", path, err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	if p := nkeys.Prefix(pub); p != nkeys.PrefixByteUser {
		return fmt.Errorf("%s holds the seed of %s, not of a user: NATS logs users in with a user seed, SU... (nsc generate nkey -u)", path, prefixName(p))
	}
	return nil
}

// checkCredsFile checks that path is a .creds file: a user JWT, not expired at now, and the
// user's seed.
func checkCredsFile(path string, now time.Time) error {
	b, err := readCredentialFile(path)
	if err != nil {
		return fmt.Errorf("cannot read the creds file: %v", err)
	}
	if !bytes.Contains(b, []byte("BEGIN NATS USER JWT")) {
		return fmt.Errorf("%s holds no user JWT (-----BEGIN NATS USER JWT-----): a .creds file comes from nsc generate creds or your NATS operator", path)
	}
	token, err := nkeys.ParseDecoratedJWT(b)
	if err != nil {
		return fmt.Errorf("%s: the user JWT cannot be read: %v", path, err)
	}
	claims, err := jwt.DecodeUserClaims(token)
	if err != nil {
		return fmt.Errorf("%s: the user JWT is not valid: %v", path, err)
	}
	if claims.Expires > 0 && now.Unix() >= claims.Expires {
		return fmt.Errorf("%s: the user JWT expired at %s: ask your NATS operator for new credentials", path,
			time.Unix(claims.Expires, 0).UTC().Format(time.RFC3339))
	}
	kp, err := nkeys.ParseDecoratedUserNKey(b)
	if err != nil {
		return fmt.Errorf("%s holds no user seed (-----BEGIN USER NKEY SEED-----): %v", path, err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	if pub != claims.Subject {
		return fmt.Errorf("%s: the seed is not the JWT's user (%s): the two parts come from different users", path, claims.Subject)
	}
	return nil
}

func prefixName(p nkeys.PrefixByte) string {
	switch p {
	case nkeys.PrefixByteAccount:
		return "an account (SA...)"
	case nkeys.PrefixByteOperator:
		return "an operator (SO...)"
	case nkeys.PrefixByteServer:
		return "a server (SN...)"
	case nkeys.PrefixByteCluster:
		return "a cluster (SC...)"
	case nkeys.PrefixByteCurve:
		return "a curve key (SX...)"
	}
	return "another kind of key"
}
