package buildinfo

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

// AddTo gives root a `version` command and a --version flag, both printing
// "<name> <Info>"; `version --json` prints Info as JSON.
func AddTo(root *cobra.Command) {
	name := root.Name()
	root.Version = Read().String()
	root.SetVersionTemplate(name + " {{.Version}}\n")
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of this build",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := Read()
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(in)
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", name, in)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	root.AddCommand(cmd)
}
