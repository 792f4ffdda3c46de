package comments_test

import (
	"fmt"
	"strings"

	"github.com/nvidia/adbot/onboarding/comments"
)

func ExampleSplit() {
	log := strings.Repeat("collected 1 item\n", 20)
	bodies, err := comments.Split(comments.Post{
		Title:     "pytest log, cycle 2",
		Log:       log,
		Collapsed: true,
		Limit:     300, // 0 means comments.MaxBody
	})
	if err != nil {
		panic(err)
	}
	for _, b := range bodies {
		first, _, _ := strings.Cut(b, "\n")
		fmt.Println(first)
	}
	back, err := comments.Join(bodies)
	fmt.Println(back == log, err)
	// Output:
	// [AGENT] pytest log, cycle 2 (part 1/4)
	// [AGENT] pytest log, cycle 2 (part 2/4)
	// [AGENT] pytest log, cycle 2 (part 3/4)
	// [AGENT] pytest log, cycle 2 (part 4/4)
	// true <nil>
}
