package node

import (
	"maps"

	"github.com/rafka/rafka/node/meta"
)

// clusterCatalog is the catalog of a broker in a cluster: reads come from
// this broker's copy of the metadata, changes are proposed to the metadata
// group (from any broker: raft forwards them to the leader) and return once
// committed and applied here, so a caller reading afterwards sees its write.
type clusterCatalog struct{ c *cluster }

var _ meta.Catalog = clusterCatalog{}

// Create creates a topic of one replica per partition; the broker's
// CreateTopic takes a replication factor (cluster.createTopic).
func (k clusterCatalog) Create(t meta.TopicInfo) error { return k.c.createTopic(t, 1) }

func (k clusterCatalog) Delete(name string) error {
	return k.c.propose(k.c.ctx, meta.DeleteTopic{Name: name})
}

func (k clusterCatalog) SetConfigs(name string, configs map[string]string) (meta.TopicInfo, error) {
	if err := k.c.propose(k.c.ctx, meta.SetTopicConfigs{Name: name, Configs: maps.Clone(configs)}); err != nil {
		return meta.TopicInfo{}, err
	}
	t, ok := k.c.state.Topic(name)
	if !ok {
		return meta.TopicInfo{}, meta.ErrUnknownTopic
	}
	return t.TopicInfo, nil
}

func (k clusterCatalog) Get(name string) (meta.TopicInfo, bool) {
	t, ok := k.c.state.Topic(name)
	return t.TopicInfo, ok
}

func (k clusterCatalog) List() []meta.TopicInfo {
	ts := k.c.state.Topics()
	out := make([]meta.TopicInfo, len(ts))
	for i, t := range ts {
		out[i] = t.TopicInfo
	}
	return out
}

// createTopic places a topic's partitions on rf live brokers each (fewer
// when fewer are alive) and commits it.
func (c *cluster) createTopic(t meta.TopicInfo, rf int) error {
	reps, err := meta.PlaceTopic(c.state, t.Name, t.Partitions, rf)
	if err != nil {
		return err
	}
	return c.propose(c.ctx, meta.CreateTopic{Topic: meta.Topic{TopicInfo: t, ID: randomHex(8), Replicas: reps}})
}
