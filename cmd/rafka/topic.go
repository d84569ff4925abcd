package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rafka/rafka/client"
)

func newTopicCmd() *cobra.Command {
	var cf connFlags
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Create, list, describe, alter and delete topics",
	}
	cf.register(cmd)

	var partitions, replicationFactor int32
	var configs []string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a topic",
		Example: `  rafka topic create orders --partitions 3
  rafka topic create audit --config retention.ms=604800000 --config fsync=always`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kv, err := parseConfigs(configs)
			if err != nil {
				return err
			}
			return cf.with(cmd, func(ctx context.Context, c *client.Client) error {
				if err := c.CreateTopic(ctx, args[0], partitions, kv, client.WithReplicationFactor(replicationFactor)); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "created topic %s with %d partitions\n", args[0], partitions)
				return nil
			})
		},
	}
	create.Flags().Int32VarP(&partitions, "partitions", "p", 1, "number of partitions")
	create.Flags().Int32VarP(&replicationFactor, "replication-factor", "r", 0, "replicas of each partition (default: the brokers' --default-replication-factor, capped by the live brokers)")
	create.Flags().StringArrayVarP(&configs, "config", "c", nil, "topic config key=value (repeatable): retention.bytes, retention.ms, segment.bytes, segment.ms, fsync, max.message.bytes")

	var jsonOut bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List topics",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.with(cmd, func(ctx context.Context, c *client.Client) error {
				topics, err := c.ListTopics(cmd.Context())
				if err != nil {
					return err
				}
				if jsonOut {
					rows := []topicRow{}
					for _, t := range topics {
						rows = append(rows, topicRow{t.Name, len(t.Partitions)})
					}
					return json.NewEncoder(cmd.OutOrStdout()).Encode(rows)
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "TOPIC\tPARTITIONS")
				for _, t := range topics {
					fmt.Fprintf(w, "%s\t%d\n", t.Name, len(t.Partitions))
				}
				return w.Flush()
			})
		},
	}
	list.Flags().BoolVar(&jsonOut, "json", false, "print JSON")

	var describeJSON bool
	describe := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a topic's configuration and partitions",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.with(cmd, func(ctx context.Context, c *client.Client) error {
				d, err := c.DescribeTopic(ctx, args[0])
				if err != nil {
					return err
				}
				if describeJSON {
					return json.NewEncoder(cmd.OutOrStdout()).Encode(describeJSONOf(d))
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintf(w, "Topic: %s\n\nCONFIG\tVALUE\n", d.Name)
				for _, k := range slices.Sorted(maps.Keys(d.Configs)) {
					fmt.Fprintf(w, "%s\t%s\n", k, d.Configs[k])
				}
				fmt.Fprintln(w, "\nPARTITION\tLEADER\tSTART\tEND\tHIGH WATERMARK\tBYTES\tSEGMENTS")
				for _, p := range d.Partitions {
					fmt.Fprintf(w, "%d\t%s\t%d\t%d\t%d\t%d\t%d\n", p.Partition, p.Leader, p.LogStartOffset, p.LogEndOffset, p.HighWatermark, p.SizeBytes, p.Segments)
				}
				return w.Flush()
			})
		},
	}
	describe.Flags().BoolVar(&describeJSON, "json", false, "print JSON")

	var alterConfigs []string
	alter := &cobra.Command{
		Use:     "alter NAME --config key=value...",
		Short:   "Change a topic's configuration",
		Example: "  rafka topic alter orders --config retention.ms=3600000",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kv, err := parseConfigs(alterConfigs)
			if err != nil {
				return err
			}
			if len(kv) == 0 {
				return usagef("give at least one --config key=value")
			}
			return cf.with(cmd, func(ctx context.Context, c *client.Client) error {
				if err := c.AlterTopicConfig(ctx, args[0], kv); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "altered topic %s\n", args[0])
				return nil
			})
		},
	}
	alter.Flags().StringArrayVarP(&alterConfigs, "config", "c", nil, "topic config key=value (repeatable)")

	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a topic and all its data",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.with(cmd, func(ctx context.Context, c *client.Client) error {
				if err := c.DeleteTopic(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted topic %s\n", args[0])
				return nil
			})
		},
	}
	cmd.AddCommand(create, list, describe, alter, del)
	return cmd
}

// JSON output of the topic commands. Field names are snake_case, as in
// every JSON the rafka commands print.
type (
	topicRow struct {
		Name       string `json:"name"`
		Partitions int    `json:"partitions"`
	}
	topicDescription struct {
		Name       string            `json:"name"`
		Configs    map[string]string `json:"configs"`
		Partitions []partitionRow    `json:"partitions"`
	}
	partitionRow struct {
		Partition      int32  `json:"partition"`
		Leader         string `json:"leader"`
		LogStartOffset int64  `json:"log_start_offset"`
		LogEndOffset   int64  `json:"log_end_offset"`
		HighWatermark  int64  `json:"high_watermark"`
		SizeBytes      int64  `json:"size_bytes"`
		Segments       int32  `json:"segments"`
	}
)

func describeJSONOf(d *client.TopicDescription) topicDescription {
	out := topicDescription{Name: d.Name, Configs: d.Configs, Partitions: []partitionRow{}}
	if out.Configs == nil {
		out.Configs = map[string]string{}
	}
	for _, p := range d.Partitions {
		out.Partitions = append(out.Partitions, partitionRow{
			Partition: p.Partition, Leader: p.Leader, LogStartOffset: p.LogStartOffset, LogEndOffset: p.LogEndOffset,
			HighWatermark: p.HighWatermark, SizeBytes: p.SizeBytes, Segments: p.Segments,
		})
	}
	return out
}

func parseConfigs(kvs []string) (map[string]string, error) {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("--config %q: want key=value", kv)
		}
		m[k] = v
	}
	return m, nil
}

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s takes %d argument(s), got %d (see --help)", cmd.CommandPath(), n, len(args))
		}
		return nil
	}
}
