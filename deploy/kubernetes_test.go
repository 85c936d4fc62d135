package deploy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/ingest"
	"github.com/aqualoop/aqualoop/analytics/store"
	"github.com/aqualoop/aqualoop/collector/config"
)

// The Kubernetes objects of deploy/kubernetes, as far as aqualoop uses them. The test decodes
// every document strictly into these: a misspelt or misplaced key fails here, as kubectl's
// strict field validation would fail it at apply time.
type (
	k8sMeta struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	}
	k8sHeader struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
	}
	k8sConfigMap struct {
		APIVersion string            `yaml:"apiVersion"`
		Kind       string            `yaml:"kind"`
		Metadata   k8sMeta           `yaml:"metadata"`
		Data       map[string]string `yaml:"data"`
	}
	k8sService struct {
		APIVersion string  `yaml:"apiVersion"`
		Kind       string  `yaml:"kind"`
		Metadata   k8sMeta `yaml:"metadata"`
		Spec       struct {
			Type      string            `yaml:"type"`
			ClusterIP string            `yaml:"clusterIP"`
			Selector  map[string]string `yaml:"selector"`
			Ports     []struct {
				Name       string `yaml:"name"`
				Port       int    `yaml:"port"`
				TargetPort string `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	k8sProbe struct {
		HTTPGet struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
		PeriodSeconds    int `yaml:"periodSeconds"`
		FailureThreshold int `yaml:"failureThreshold"`
	}
	k8sContainer struct {
		Name  string   `yaml:"name"`
		Image string   `yaml:"image"`
		Args  []string `yaml:"args"`
		Env   []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom *struct {
				FieldRef *struct {
					FieldPath string `yaml:"fieldPath"`
				} `yaml:"fieldRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
		LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	}
	k8sStatefulSet struct {
		APIVersion string  `yaml:"apiVersion"`
		Kind       string  `yaml:"kind"`
		Metadata   k8sMeta `yaml:"metadata"`
		Spec       struct {
			ServiceName         string `yaml:"serviceName"`
			Replicas            int    `yaml:"replicas"`
			PodManagementPolicy string `yaml:"podManagementPolicy"`
			Selector            struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Template struct {
				Metadata k8sMeta `yaml:"metadata"`
				Spec     struct {
					TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
					SecurityContext               struct {
						RunAsNonRoot bool `yaml:"runAsNonRoot"`
						RunAsUser    int  `yaml:"runAsUser"`
					} `yaml:"securityContext"`
					Containers []k8sContainer `yaml:"containers"`
					Volumes    []struct {
						Name      string `yaml:"name"`
						ConfigMap *struct {
							Name string `yaml:"name"`
						} `yaml:"configMap"`
						Secret *struct {
							SecretName string `yaml:"secretName"`
						} `yaml:"secret"`
					} `yaml:"volumes"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
)

// platformFile is aqualoop.yaml as the ConfigMap carries it: the sections the platform reads,
// decoded with the platform's own config types and known-fields on.
type platformFile struct {
	Sites    []string           `yaml:"sites"`
	Ingest   ingest.Config      `yaml:"ingest"`
	InfluxDB store.InfluxConfig `yaml:"influxdb"`
	HTTP     struct {
		Listen string `yaml:"listen"`
	} `yaml:"http"`
}

func (f *platformFile) Default() {
	f.Ingest.Default()
	f.InfluxDB.Default()
}

func (f *platformFile) Validate(p *config.Problems) {
	f.Ingest.Validate(p, "ingest")
	f.InfluxDB.Validate(p, "influxdb")
}

// decodeK8s reads every document of the files in deploy/kubernetes strictly, by kind.
func decodeK8s(t *testing.T) (cms []k8sConfigMap, svcs []k8sService, sts []k8sStatefulSet) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/kubernetes: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for i := 0; ; i++ {
			var doc yaml.Node
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			var h k8sHeader
			if err := doc.Decode(&h); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			raw, err := yaml.Marshal(&doc)
			if err != nil {
				t.Fatal(err)
			}
			strict := func(v any) {
				d := yaml.NewDecoder(bytes.NewReader(raw))
				d.KnownFields(true)
				if err := d.Decode(v); err != nil {
					t.Fatalf("%s document %d (%s): %v", f, i, h.Kind, err)
				}
			}
			switch h.Kind {
			case "ConfigMap":
				var v k8sConfigMap
				strict(&v)
				cms = append(cms, v)
			case "Service":
				var v k8sService
				strict(&v)
				svcs = append(svcs, v)
			case "StatefulSet":
				var v k8sStatefulSet
				strict(&v)
				sts = append(sts, v)
			default:
				t.Fatalf("%s document %d: unexpected kind %q", f, i, h.Kind)
			}
		}
	}
	return cms, svcs, sts
}

func subset(sub, of map[string]string) bool {
	for k, v := range sub {
		if of[k] != v {
			return false
		}
	}
	return len(sub) > 0
}

// TestKubernetesManifests decodes the manifests strictly and checks that they fit together and
// fit the platform: the StatefulSet's replicas are the partition count, each pod's index comes
// from its name, the config it mounts is valid for serve, and the Services find the pods.
func TestKubernetesManifests(t *testing.T) {
	cms, svcs, sts := decodeK8s(t)
	if len(cms) != 1 || len(sts) != 1 || len(svcs) != 2 {
		t.Fatalf("%d ConfigMaps, %d Services, %d StatefulSets; want 1, 2, 1", len(cms), len(svcs), len(sts))
	}
	cm, ss := cms[0], sts[0]
	if cm.APIVersion != "v1" || ss.APIVersion != "apps/v1" {
		t.Errorf("apiVersions %q, %q", cm.APIVersion, ss.APIVersion)
	}
	pod := ss.Spec.Template
	if !subset(ss.Spec.Selector.MatchLabels, pod.Metadata.Labels) {
		t.Errorf("the StatefulSet's selector %v does not match its pods' labels %v", ss.Spec.Selector.MatchLabels, pod.Metadata.Labels)
	}
	var headless *k8sService
	for i, s := range svcs {
		if s.APIVersion != "v1" || !subset(s.Spec.Selector, pod.Metadata.Labels) {
			t.Errorf("service %s selects %v, not the pods %v", s.Metadata.Name, s.Spec.Selector, pod.Metadata.Labels)
		}
		if s.Metadata.Name == ss.Spec.ServiceName {
			headless = &svcs[i]
		}
	}
	if headless == nil || headless.Spec.ClusterIP != "None" {
		t.Fatalf("serviceName %q is not a headless Service of these manifests", ss.Spec.ServiceName)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]

	// The config file serve is given is a key of the mounted ConfigMap.
	if len(c.Args) != 3 || c.Args[0] != "serve" || c.Args[1] != "--config" {
		t.Fatalf("args %q, want serve --config <file>", c.Args)
	}
	mountDir, key := path.Split(c.Args[2])
	var cmVolume string
	for _, m := range c.VolumeMounts {
		if path.Clean(m.MountPath) == path.Clean(mountDir) {
			cmVolume = m.Name
		}
	}
	vi := slices.IndexFunc(pod.Spec.Volumes, func(v struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
		} `yaml:"secret"`
	}) bool {
		return v.Name == cmVolume
	})
	if vi < 0 || pod.Spec.Volumes[vi].ConfigMap == nil || pod.Spec.Volumes[vi].ConfigMap.Name != cm.Metadata.Name {
		t.Fatalf("%s is not mounted from ConfigMap %s", c.Args[2], cm.Metadata.Name)
	}
	text, ok := cm.Data[key]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s", cm.Metadata.Name, key)
	}

	// The pod's index comes from its name.
	var fromName string
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name" {
			fromName = e.Name
		}
	}
	if fromName == "" {
		t.Fatal("no environment variable carries the pod name")
	}
	for ordinal := range ss.Spec.Replicas {
		t.Setenv(fromName, ss.Metadata.Name+"-"+strconv.Itoa(ordinal))
		var f platformFile
		if err := config.Parse(key, []byte(text), &f); err != nil {
			t.Fatalf("the ConfigMap's %s for pod %d: %v", key, ordinal, err)
		}
		p := f.Ingest.Partition
		if p.IndexEnv != fromName || p.Index != ordinal || p.Count != ss.Spec.Replicas {
			t.Errorf("pod %d: partition %+v, want index %d of %d from %s", ordinal, p, ordinal, ss.Spec.Replicas, fromName)
		}
		if want := "-" + strconv.Itoa(ordinal); f.Ingest.MQTT.ClientID[len(f.Ingest.MQTT.ClientID)-len(want):] != want {
			t.Errorf("pod %d connects as %q, want its index in the client id", ordinal, f.Ingest.MQTT.ClientID)
		}
		if f.Ingest.MQTT.CleanSession {
			t.Error("clean_session true: a stopped pod's readings would not wait in the broker")
		}
		// Every site file the config names is in the ConfigMap and is a valid model.
		for _, sf := range f.Sites {
			src, ok := cm.Data[sf]
			if !ok {
				t.Errorf("site file %s is not in the ConfigMap", sf)
				continue
			}
			var s analytics.Site
			if err := config.Parse(sf, []byte(src), &s); err != nil {
				t.Errorf("site file %s: %v", sf, err)
			}
		}
		// The HTTP port serve listens on is the container port the probes and Services use.
		_, port, err := net.SplitHostPort(f.HTTP.Listen)
		if err != nil {
			t.Fatalf("http.listen %q: %v", f.HTTP.Listen, err)
		}
		pi := slices.IndexFunc(c.Ports, func(p struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		}) bool {
			return strconv.Itoa(p.ContainerPort) == port
		})
		if pi < 0 {
			t.Fatalf("no container port %s", port)
		}
		for _, pr := range []*k8sProbe{c.ReadinessProbe, c.LivenessProbe} {
			if pr == nil || pr.HTTPGet.Path != "/healthz" || pr.HTTPGet.Port != c.Ports[pi].Name {
				t.Errorf("probe %+v, want GET /healthz on port %s", pr, c.Ports[pi].Name)
			}
		}
		for _, s := range svcs {
			for _, sp := range s.Spec.Ports {
				if sp.TargetPort != c.Ports[pi].Name {
					t.Errorf("service %s targets port %q, want %q", s.Metadata.Name, sp.TargetPort, c.Ports[pi].Name)
				}
			}
		}
	}
}
