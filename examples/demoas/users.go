package demoas

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// User is a resource owner who can log in at the authorization endpoint.
type User struct {
	// Username is the login name; it becomes the token's subject ("sub").
	Username string
	// Password is the plain password; the server keeps only a bcrypt hash.
	Password string
	// Name is the display name; optional.
	Name string
}

// userDB holds the users' password hashes.
type userDB struct {
	hashes map[string][]byte
	// dummy is compared against when the username is unknown, so that an
	// unknown user takes as long to refuse as a wrong password.
	dummy []byte
}

// newUserDB hashes the users' passwords; it returns nil for no users.
func newUserDB(users []User) (*userDB, error) {
	if len(users) == 0 {
		return nil, nil
	}
	db := &userDB{hashes: map[string][]byte{}}
	for _, u := range users {
		if u.Username == "" || u.Password == "" {
			return nil, errors.New("demoas: a user has an empty username or password")
		}
		if _, dup := db.hashes[u.Username]; dup {
			return nil, fmt.Errorf("demoas: duplicate user %q", u.Username)
		}
		// The minimum cost keeps tests fast; this is a demo server.
		h, err := bcrypt.GenerateFromPassword([]byte(u.Password), bcrypt.MinCost)
		if err != nil {
			return nil, fmt.Errorf("demoas: hash password of %q: %w", u.Username, err)
		}
		db.hashes[u.Username] = h
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("dummy password"), bcrypt.MinCost)
	if err != nil {
		return nil, fmt.Errorf("demoas: hash: %w", err)
	}
	db.dummy = dummy
	return db, nil
}

// check reports whether password is the user's.
func (db *userDB) check(username, password string) bool {
	h, known := db.hashes[username]
	if !known {
		h = db.dummy
	}
	ok := bcrypt.CompareHashAndPassword(h, []byte(password)) == nil
	return known && ok
}
