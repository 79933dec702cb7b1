package redis

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/handlers/storetest"
	"github.com/phpsessd/phpsessd/internal/testserver"
)

// writeTLSFiles creates a CA and a server certificate for 127.0.0.1.
func writeTLSFiles(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "phpsessd test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "EC PRIVATE KEY", keyDER)
}

// TestTLS runs the suite over rediss:// against a TLS-only listener.
func TestTLS(t *testing.T) {
	testserver.Need(t, "redis-server")
	dir := t.TempDir()
	ca, cert, key := writeTLSFiles(t, dir)
	tlsPort, err := testserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	startRedis(t, "--tls-port", strconv.Itoa(tlsPort), "--tls-cert-file", cert,
		"--tls-key-file", key, "--tls-ca-cert-file", ca, "--tls-auth-clients", "no")
	u := "rediss://127.0.0.1:" + strconv.Itoa(tlsPort) + "/0?tls_ca=" + url.QueryEscape(ca)
	storetest.RunWith(t, func(t *testing.T) handlers.Store { return openURL(t, u) }, storetest.Options{NativeExpiry: true})

	// Without the CA the certificate is refused: the first call fails as
	// unavailable rather than silently talking plaintext or unverified.
	bad := openURL(t, "rediss://127.0.0.1:"+strconv.Itoa(tlsPort)+"/0?op_timeout=300ms&max_retries=0")
	if _, err := bad.Load(ctxT(t), "tls1"); err == nil {
		t.Fatal("TLS accepted a certificate from an unknown CA")
	} else {
		t.Logf("unknown CA: %v", err)
	}
}
