package fakegithub

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"sync"
)

var (
	appKeyOnce sync.Once
	appKeyPEM  []byte
)

// AppKey is a GitHub App private key (PEM, PKCS#1) made once per process, for
// clients that sign App JWTs against the fake. It is generated at run time so
// that no key is ever stored in the repository; the fake checks only the JWT's
// shape, not its signature.
func AppKey() []byte {
	appKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic("generate test App key: " + err.Error())
		}
		appKeyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	})
	return appKeyPEM
}
