package wire

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestCodesTable(t *testing.T) {
	names := map[string]bool{}
	for i, c := range Codes {
		if int(c.Code) != i {
			t.Errorf("Codes[%d] holds code %d", i, c.Code)
		}
		if c.Name == "" || c.Meaning == "" {
			t.Errorf("code %d lacks a name or meaning", i)
		}
		if names[c.Name] {
			t.Errorf("name %s used twice", c.Name)
		}
		names[c.Name] = true
		if c.Code.Info() != c || c.Code.String() != c.Name {
			t.Errorf("Info/String of %d disagree with the table", i)
		}
	}
	retriable := map[ErrorCode]bool{
		ErrNotLeader: true, ErrRequestTimedOut: true, ErrBrokerShuttingDown: true,
		ErrStorage: true, ErrNotEnoughReplicas: true, ErrThrottled: true, ErrMetadataUnavailable: true,
		ErrOutOfOrderSequence: true,
	}
	for _, c := range Codes {
		if c.Code.Retriable() != retriable[c.Code] {
			t.Errorf("%s: Retriable = %v", c.Name, c.Code.Retriable())
		}
	}
	unknown := ErrorCode(len(Codes) + 3)
	if unknown.Retriable() || unknown.String() != fmt.Sprintf("CODE_%d", len(Codes)+3) {
		t.Errorf("unknown code: %v %v", unknown, unknown.Retriable())
	}
}

func TestErrorIs(t *testing.T) {
	err := fmt.Errorf("produce: %w", AsError(ErrNotLeader, "leader is b2"))
	if !errors.Is(err, ErrNotLeader) || errors.Is(err, ErrStorage) {
		t.Fatal("errors.Is on the code")
	}
	if !errors.Is(err, &Error{Code: ErrNotLeader}) || errors.Is(err, &Error{Code: ErrUnknown}) {
		t.Fatal("errors.Is on an *Error")
	}
	var we *Error
	if !errors.As(err, &we) || we.Message != "leader is b2" || we.Error() != "NOT_LEADER: leader is b2" {
		t.Fatalf("errors.As: %v", we)
	}
	if AsError(ErrNone, "ignored") != nil {
		t.Fatal("AsError(ErrNone) is not nil")
	}
	if got := AsError(ErrThrottled, "").Error(); got != "THROTTLED: "+Codes[ErrThrottled].Meaning {
		t.Fatalf("message-less error %q", got)
	}
	if ErrStorage.Error() != "STORAGE_ERROR" {
		t.Fatal("ErrorCode.Error")
	}
}

func TestAPINames(t *testing.T) {
	seen := map[string]bool{}
	for a := API(0); a < 64; a++ {
		if !a.Known() {
			if a.String() != "unknown" {
				t.Errorf("API %d: %s", a, a)
			}
			continue
		}
		if seen[a.String()] {
			t.Errorf("API name %s used twice", a)
		}
		seen[a.String()] = true
	}
	if len(seen) != 17 || APISubscribeData.String() != "subscribe_data" || APIRaft.String() != "raft" {
		t.Fatalf("%d known APIs", len(seen))
	}
}

// TestCodesDocumented: docs/protocol.md's error table lists every code with
// this table's name, retriable flag and meaning.
func TestCodesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Skipf("no protocol doc: %v", err)
	}
	for _, c := range Codes {
		retriable := "no"
		if c.Retriable {
			retriable = "yes"
		}
		row := fmt.Sprintf("| %d | `%s` | %s | %s |\n", c.Code, c.Name, retriable, c.Meaning)
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/protocol.md lacks the row %q", row)
		}
	}
	for a, name := range apiNames {
		if row := fmt.Sprintf("| %d | %s |", a, name); !strings.Contains(string(doc), row) {
			t.Errorf("docs/protocol.md lacks the API row %q", row)
		}
	}
}
