// Package rdstest is a local double of the Amazon RDS Query API for tests: form-encoded
// Action/Version requests in, XML replies and ErrorResponse faults out, with the state
// transitions (creating -> available) that the SDK's waiters poll for. Point the real
// aws-sdk-go-v2 RDS client at Server.URL through its BaseEndpoint setting.
package rdstest

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// APIVersion is the RDS API version every request must carry.
const APIVersion = "2014-10-31"

// Request is one call received.
type Request struct {
	Action string
	Params url.Values
}

// Tag returns the value of tag key in a request's Tags.Tag.N list.
func (r Request) Tag(key string) (string, bool) {
	for i := 1; ; i++ {
		k, ok := r.Params[fmt.Sprintf("Tags.Tag.%d.Key", i)]
		if !ok {
			return "", false
		}
		if k[0] == key {
			return r.Params.Get(fmt.Sprintf("Tags.Tag.%d.Value", i)), true
		}
	}
}

// Tag is an RDS tag.
type Tag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

// Cluster is a DB cluster.
type Cluster struct {
	ID                  string
	Status              string
	Engine              string
	EngineVersion       string
	SubnetGroup         string
	SecurityGroups      []string
	Members             []string // instance identifiers; the first is the writer
	Earliest, Latest    time.Time
	ServerlessMin       float64
	ServerlessMax       float64
	pollsUntilAvailable int
}

// Snapshot is a DB cluster snapshot.
type Snapshot struct {
	ID             string
	ClusterID      string
	Status         string
	Type           string
	Engine         string
	EngineVersion  string
	Created        time.Time
	Tags           []Tag
	pollsUntilDone int
	fail           bool
}

// Instance is a DB instance.
type Instance struct {
	ID                  string
	ClusterID           string
	Class               string
	Engine              string
	Status              string
	pollsUntilAvailable int
}

type fault struct {
	code    string
	status  int
	message string
}

// Server is the double. Its fields are guarded by its mutex; use the methods.
type Server struct {
	URL string

	mu        sync.Mutex
	now       func() time.Time
	requests  []Request
	clusters  map[string]*Cluster
	snapshots map[string]*Snapshot
	instances map[string]*Instance
	faults    map[string][]fault
	// Polls is how many Describe calls a new snapshot, cluster or instance stays creating.
	polls     int
	failNext  bool
	quotaMax  int64
	pageLimit int
}

// NewServer starts a double on 127.0.0.1, closed when the test ends.
func NewServer(t testing.TB) *Server {
	s := &Server{now: func() time.Time { return time.Now().UTC() }, clusters: map[string]*Cluster{},
		snapshots: map[string]*Snapshot{}, instances: map[string]*Instance{}, faults: map[string][]fault{},
		polls: 2, quotaMax: 100}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// AddCluster adds an available cluster with a writer instance of class db.r6g.large.
func (s *Server) AddCluster(id, engine string) *Cluster {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	writer := id + "-instance-1"
	c := &Cluster{ID: id, Status: "available", Engine: engine, EngineVersion: "15.4",
		SubnetGroup: "app-private", SecurityGroups: []string{"sg-0a1b2c3d"}, Members: []string{writer},
		Earliest: now.Add(-7 * 24 * time.Hour), Latest: now.Add(-3 * time.Minute)}
	s.clusters[id] = c
	s.instances[writer] = &Instance{ID: writer, ClusterID: id, Class: "db.r6g.large", Engine: engine, Status: "available"}
	return c
}

// AddSnapshot adds an available manual snapshot.
func (s *Server) AddSnapshot(id, cluster string, created time.Time, tags map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := &Snapshot{ID: id, ClusterID: cluster, Status: "available", Type: "manual", Engine: "aurora-postgresql",
		EngineVersion: "15.4", Created: created.UTC()}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		snap.Tags = append(snap.Tags, Tag{k, tags[k]})
	}
	s.snapshots[id] = snap
}

// SetClusterStatus changes a cluster's status (e.g. "stopped", "modifying").
func (s *Server) SetClusterStatus(id, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clusters[id].Status = status
}

// SetPolls sets how many Describe calls new resources stay creating.
func (s *Server) SetPolls(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.polls = n
}

// FailNextSnapshot makes the next snapshot end in state failed.
func (s *Server) FailNextSnapshot() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = true
}

// SetQuota sets the ManualClusterSnapshots quota.
func (s *Server) SetQuota(max int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quotaMax = max
}

// SetPageLimit caps DescribeDBClusterSnapshots pages below the request's MaxRecords, to
// exercise pagination with few snapshots.
func (s *Server) SetPageLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageLimit = n
}

// Fail makes the next call of action answer with the fault code and HTTP status.
func (s *Server) Fail(action, code string, status int, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[action] = append(s.faults[action], fault{code, status, message})
}

// Requests returns the calls received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Actions returns the actions received so far, in order.
func (s *Server) Actions() []string {
	var out []string
	for _, r := range s.Requests() {
		out = append(out, r.Action)
	}
	return out
}

// Snapshot returns a copy of a snapshot.
func (s *Server) Snapshot(id string) (Snapshot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, ok := s.snapshots[id]
	if !ok {
		return Snapshot{}, false
	}
	return *snap, true
}

// Cluster returns a copy of a cluster.
func (s *Server) Cluster(id string) (Cluster, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clusters[id]
	if !ok {
		return Cluster{}, false
	}
	return *c, true
}

// Instance returns a copy of an instance.
func (s *Server) Instance(id string) (Instance, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.instances[id]
	if !ok {
		return Instance{}, false
	}
	return *i, true
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeFault(w, fault{"InvalidAction", 400, "the Query API takes POST"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeFault(w, fault{"MalformedQueryString", 400, err.Error()})
		return
	}
	form := r.PostForm
	action := form.Get("Action")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Request{Action: action, Params: form})
	if v := form.Get("Version"); v != APIVersion {
		writeFault(w, fault{"InvalidParameterValue", 400, fmt.Sprintf("unsupported Version %q", v)})
		return
	}
	if fs := s.faults[action]; len(fs) > 0 {
		s.faults[action] = fs[1:]
		writeFault(w, fs[0])
		return
	}
	var (
		result any
		f      *fault
	)
	switch action {
	case "CreateDBClusterSnapshot":
		result, f = s.createSnapshot(form)
	case "DescribeDBClusterSnapshots":
		result, f = s.describeSnapshots(form)
	case "DeleteDBClusterSnapshot":
		result, f = s.deleteSnapshot(form)
	case "DescribeDBClusters":
		result, f = s.describeClusters(form)
	case "RestoreDBClusterFromSnapshot", "RestoreDBClusterToPointInTime":
		result, f = s.restore(action, form)
	case "CreateDBInstance":
		result, f = s.createInstance(form)
	case "DescribeDBInstances":
		result, f = s.describeInstances(form)
	case "DescribeAccountAttributes":
		result = s.accountAttributes()
	default:
		f = &fault{"InvalidAction", 400, fmt.Sprintf("The action %s is not valid for this web service.", action)}
	}
	if f != nil {
		writeFault(w, *f)
		return
	}
	writeResult(w, action, result)
}

func writeFault(w http.ResponseWriter, f fault) {
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", "req-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	w.WriteHeader(f.status)
	var b strings.Builder
	b.WriteString("<ErrorResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><Error><Type>Sender</Type><Code>")
	_ = xml.EscapeText(&b, []byte(f.code))
	b.WriteString("</Code><Message>")
	_ = xml.EscapeText(&b, []byte(f.message))
	b.WriteString("</Message></Error><RequestId>req</RequestId></ErrorResponse>")
	_, _ = w.Write([]byte(b.String()))
}

// resultBody wraps an operation's result fields in its <OpResult> element.
type resultBody struct {
	XMLName xml.Name
	V       any `xml:"V"`
}

func writeResult(w http.ResponseWriter, action string, result any) {
	body, err := xml.Marshal(resultBody{XMLName: xml.Name{Local: action + "Result"}, V: result})
	if err != nil {
		writeFault(w, fault{"InternalFailure", 500, err.Error()})
		return
	}
	// Drop the <V> element: the result's fields sit directly in <OpResult>.
	inner := strings.Replace(string(body), "<V>", "", 1)
	if i := strings.LastIndex(inner, "</V>"); i >= 0 {
		inner = inner[:i] + inner[i+len("</V>"):]
	}
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<%[1]sResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">%[2]s<ResponseMetadata><RequestId>req</RequestId></ResponseMetadata></%[1]sResponse>`,
		action, inner)
}

// XML shapes (the subset of fields tda reads).

type xmlSnapshot struct {
	XMLName       xml.Name `xml:"DBClusterSnapshot"`
	ID            string   `xml:"DBClusterSnapshotIdentifier"`
	ClusterID     string   `xml:"DBClusterIdentifier"`
	Created       string   `xml:"SnapshotCreateTime,omitempty"`
	Engine        string   `xml:"Engine"`
	EngineVersion string   `xml:"EngineVersion"`
	Status        string   `xml:"Status"`
	Type          string   `xml:"SnapshotType"`
	Tags          []Tag    `xml:"TagList>Tag"`
}

type xmlCluster struct {
	XMLName        xml.Name `xml:"DBCluster"`
	ID             string   `xml:"DBClusterIdentifier"`
	Status         string   `xml:"Status"`
	Engine         string   `xml:"Engine"`
	EngineVersion  string   `xml:"EngineVersion"`
	Endpoint       string   `xml:"Endpoint"`
	Port           int      `xml:"Port,omitempty"`
	MasterUsername string   `xml:"MasterUsername,omitempty"`
	DatabaseName   string   `xml:"DatabaseName,omitempty"`
	SubnetGroup    string   `xml:"DBSubnetGroup"`
	Earliest       string   `xml:"EarliestRestorableTime,omitempty"`
	Latest         string   `xml:"LatestRestorableTime,omitempty"`
	SecurityGroups []struct {
		ID     string `xml:"VpcSecurityGroupId"`
		Status string `xml:"Status"`
	} `xml:"VpcSecurityGroups>VpcSecurityGroupMembership"`
	Members []struct {
		ID     string `xml:"DBInstanceIdentifier"`
		Writer bool   `xml:"IsClusterWriter"`
	} `xml:"DBClusterMembers>DBClusterMember"`
	Serverless *struct {
		Min float64 `xml:"MinCapacity"`
		Max float64 `xml:"MaxCapacity"`
	} `xml:"ServerlessV2ScalingConfiguration,omitempty"`
}

type xmlInstance struct {
	XMLName   xml.Name `xml:"DBInstance"`
	ID        string   `xml:"DBInstanceIdentifier"`
	ClusterID string   `xml:"DBClusterIdentifier"`
	Class     string   `xml:"DBInstanceClass"`
	Engine    string   `xml:"Engine"`
	Status    string   `xml:"DBInstanceStatus"`
}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func (s *Server) snapshotXML(snap *Snapshot) xmlSnapshot {
	return xmlSnapshot{ID: snap.ID, ClusterID: snap.ClusterID, Created: ts(snap.Created), Engine: snap.Engine,
		EngineVersion: snap.EngineVersion, Status: snap.Status, Type: snap.Type, Tags: snap.Tags}
}

func (s *Server) clusterXML(c *Cluster) xmlCluster {
	x := xmlCluster{ID: c.ID, Status: c.Status, Engine: c.Engine, EngineVersion: c.EngineVersion,
		Endpoint: c.ID + ".cluster-abc123.eu-west-1.rds.amazonaws.com", SubnetGroup: c.SubnetGroup,
		Port: enginePort(c.Engine), MasterUsername: "app_admin", DatabaseName: "app",
		Earliest: ts(c.Earliest), Latest: ts(c.Latest)}
	for _, sg := range c.SecurityGroups {
		x.SecurityGroups = append(x.SecurityGroups, struct {
			ID     string `xml:"VpcSecurityGroupId"`
			Status string `xml:"Status"`
		}{sg, "active"})
	}
	for i, m := range c.Members {
		x.Members = append(x.Members, struct {
			ID     string `xml:"DBInstanceIdentifier"`
			Writer bool   `xml:"IsClusterWriter"`
		}{m, i == 0})
	}
	if c.ServerlessMax > 0 {
		x.Serverless = &struct {
			Min float64 `xml:"MinCapacity"`
			Max float64 `xml:"MaxCapacity"`
		}{c.ServerlessMin, c.ServerlessMax}
	}
	return x
}

// enginePort is the port RDS gives a cluster of engine by default.
func enginePort(engine string) int {
	if strings.Contains(engine, "mysql") {
		return 3306
	}
	return 5432
}

func tagsFrom(form url.Values) []Tag {
	var tags []Tag
	for i := 1; ; i++ {
		k, ok := form[fmt.Sprintf("Tags.Tag.%d.Key", i)]
		if !ok {
			return tags
		}
		tags = append(tags, Tag{k[0], form.Get(fmt.Sprintf("Tags.Tag.%d.Value", i))})
	}
}

func notFound(code, what string) *fault {
	return &fault{code, 404, what + " not found."}
}

func (s *Server) manualCount() int64 {
	var n int64
	for _, snap := range s.snapshots {
		if snap.Type == "manual" {
			n++
		}
	}
	return n
}

func (s *Server) createSnapshot(form url.Values) (any, *fault) {
	cid, sid := form.Get("DBClusterIdentifier"), form.Get("DBClusterSnapshotIdentifier")
	c, ok := s.clusters[cid]
	if !ok {
		return nil, notFound("DBClusterNotFoundFault", "DBCluster "+cid)
	}
	if c.Status != "available" {
		return nil, &fault{"InvalidDBClusterStateFault", 400, fmt.Sprintf("DBCluster %s is not in the available state (%s).", cid, c.Status)}
	}
	if _, exists := s.snapshots[sid]; exists {
		return nil, &fault{"DBClusterSnapshotAlreadyExistsFault", 400, fmt.Sprintf("Cannot create the snapshot because a snapshot with the identifier %s already exists.", sid)}
	}
	if s.manualCount() >= s.quotaMax {
		return nil, &fault{"SnapshotQuotaExceeded", 400, fmt.Sprintf("Cannot create more than %d manual snapshots", s.quotaMax)}
	}
	snap := &Snapshot{ID: sid, ClusterID: cid, Status: "creating", Type: "manual", Engine: c.Engine,
		EngineVersion: c.EngineVersion, Created: s.now(), Tags: tagsFrom(form), pollsUntilDone: s.polls, fail: s.failNext}
	s.failNext = false
	s.snapshots[sid] = snap
	return struct {
		X xmlSnapshot `xml:"DBClusterSnapshot"`
	}{s.snapshotXML(snap)}, nil
}

func (s *Server) describeSnapshots(form url.Values) (any, *fault) {
	sid, cid, typ := form.Get("DBClusterSnapshotIdentifier"), form.Get("DBClusterIdentifier"), form.Get("SnapshotType")
	if sid != "" {
		if _, ok := s.snapshots[sid]; !ok {
			return nil, notFound("DBClusterSnapshotNotFoundFault", "DBClusterSnapshot "+sid)
		}
	}
	var list []*Snapshot
	for _, snap := range s.snapshots {
		if (sid == "" || snap.ID == sid) && (cid == "" || snap.ClusterID == cid) && (typ == "" || snap.Type == typ) {
			list = append(list, snap)
		}
	}
	sort.Slice(list, func(i, j int) bool {
		if !list[i].Created.Equal(list[j].Created) {
			return list[i].Created.Before(list[j].Created)
		}
		return list[i].ID < list[j].ID
	})
	page := 100
	if m := form.Get("MaxRecords"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 20 || n > 100 {
			return nil, &fault{"InvalidParameterValue", 400, "MaxRecords must be between 20 and 100"}
		}
		page = n
	}
	if s.pageLimit > 0 && s.pageLimit < page {
		page = s.pageLimit
	}
	start := 0
	if m := form.Get("Marker"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 0 || n > len(list) {
			return nil, &fault{"InvalidParameterValue", 400, "invalid Marker"}
		}
		start = n
	}
	end := min(start+page, len(list))
	var out struct {
		Snapshots []xmlSnapshot `xml:"DBClusterSnapshots>DBClusterSnapshot"`
		Marker    string        `xml:"Marker,omitempty"`
	}
	for _, snap := range list[start:end] {
		if snap.Status == "creating" {
			if snap.pollsUntilDone <= 0 {
				snap.Status = "available"
				if snap.fail {
					snap.Status = "failed"
				}
			}
			snap.pollsUntilDone--
		}
		out.Snapshots = append(out.Snapshots, s.snapshotXML(snap))
	}
	if end < len(list) {
		out.Marker = strconv.Itoa(end)
	}
	return out, nil
}

func (s *Server) deleteSnapshot(form url.Values) (any, *fault) {
	sid := form.Get("DBClusterSnapshotIdentifier")
	snap, ok := s.snapshots[sid]
	if !ok {
		return nil, notFound("DBClusterSnapshotNotFoundFault", "DBClusterSnapshot "+sid)
	}
	if snap.Status != "available" {
		return nil, &fault{"InvalidDBClusterSnapshotStateFault", 400, fmt.Sprintf("Only available snapshots can be deleted; %s is %s.", sid, snap.Status)}
	}
	delete(s.snapshots, sid)
	snap.Status = "deleted"
	return struct {
		X xmlSnapshot `xml:"DBClusterSnapshot"`
	}{s.snapshotXML(snap)}, nil
}

func (s *Server) describeClusters(form url.Values) (any, *fault) {
	cid := form.Get("DBClusterIdentifier")
	c, ok := s.clusters[cid]
	if !ok {
		return nil, notFound("DBClusterNotFoundFault", "DBCluster "+cid)
	}
	if c.Status == "creating" {
		if c.pollsUntilAvailable <= 0 {
			c.Status = "available"
		}
		c.pollsUntilAvailable--
	}
	return struct {
		X []xmlCluster `xml:"DBClusters>DBCluster"`
	}{[]xmlCluster{s.clusterXML(c)}}, nil
}

func (s *Server) restore(action string, form url.Values) (any, *fault) {
	newID := form.Get("DBClusterIdentifier")
	if _, exists := s.clusters[newID]; exists {
		return nil, &fault{"DBClusterAlreadyExistsFault", 400, "DB Cluster already exists"}
	}
	c := &Cluster{ID: newID, Status: "creating", SubnetGroup: form.Get("DBSubnetGroupName"), pollsUntilAvailable: s.polls}
	for i := 1; ; i++ {
		v, ok := form[fmt.Sprintf("VpcSecurityGroupIds.VpcSecurityGroupId.%d", i)]
		if !ok {
			break
		}
		c.SecurityGroups = append(c.SecurityGroups, v[0])
	}
	if action == "RestoreDBClusterFromSnapshot" {
		snap, ok := s.snapshots[form.Get("SnapshotIdentifier")]
		if !ok {
			return nil, notFound("DBClusterSnapshotNotFoundFault", "DBClusterSnapshot "+form.Get("SnapshotIdentifier"))
		}
		if snap.Status != "available" {
			return nil, &fault{"InvalidDBClusterSnapshotStateFault", 400, "snapshot is not available"}
		}
		if form.Get("Engine") == "" {
			return nil, &fault{"InvalidParameterValue", 400, "Engine is required"}
		}
		c.Engine, c.EngineVersion = form.Get("Engine"), form.Get("EngineVersion")
	} else {
		src, ok := s.clusters[form.Get("SourceDBClusterIdentifier")]
		if !ok {
			return nil, notFound("DBClusterNotFoundFault", "DBCluster "+form.Get("SourceDBClusterIdentifier"))
		}
		latest := form.Get("UseLatestRestorableTime") == "true"
		at := form.Get("RestoreToTime")
		if latest == (at != "") {
			return nil, &fault{"InvalidParameterCombination", 400, "exactly one of RestoreToTime and UseLatestRestorableTime is required"}
		}
		if at != "" {
			t, err := time.Parse(time.RFC3339Nano, at)
			if err != nil || t.Before(src.Earliest) || t.After(src.Latest) {
				return nil, &fault{"InvalidRestoreFault", 400, "the restore time is outside the restorable window"}
			}
			if form.Get("RestoreType") == "copy-on-write" {
				return nil, &fault{"InvalidParameterCombination", 400, "RestoreToTime is not allowed with copy-on-write"}
			}
		}
		c.Engine, c.EngineVersion = src.Engine, src.EngineVersion
	}
	if v := form.Get("ServerlessV2ScalingConfiguration.MaxCapacity"); v != "" {
		c.ServerlessMax, _ = strconv.ParseFloat(v, 64)
		c.ServerlessMin, _ = strconv.ParseFloat(form.Get("ServerlessV2ScalingConfiguration.MinCapacity"), 64)
	}
	s.clusters[newID] = c
	return struct {
		X xmlCluster `xml:"DBCluster"`
	}{s.clusterXML(c)}, nil
}

func (s *Server) createInstance(form url.Values) (any, *fault) {
	iid, cid := form.Get("DBInstanceIdentifier"), form.Get("DBClusterIdentifier")
	c, ok := s.clusters[cid]
	if !ok {
		return nil, notFound("DBClusterNotFoundFault", "DBCluster "+cid)
	}
	if c.Status != "available" {
		return nil, &fault{"InvalidDBClusterStateFault", 400, "DB cluster is not available"}
	}
	if _, exists := s.instances[iid]; exists {
		return nil, &fault{"DBInstanceAlreadyExists", 400, "DB instance already exists"}
	}
	if form.Get("DBInstanceClass") == "" || form.Get("Engine") == "" {
		return nil, &fault{"InvalidParameterValue", 400, "DBInstanceClass and Engine are required"}
	}
	inst := &Instance{ID: iid, ClusterID: cid, Class: form.Get("DBInstanceClass"), Engine: form.Get("Engine"),
		Status: "creating", pollsUntilAvailable: s.polls}
	s.instances[iid] = inst
	c.Members = append(c.Members, iid)
	return struct {
		X xmlInstance `xml:"DBInstance"`
	}{xmlInstance{ID: iid, ClusterID: cid, Class: inst.Class, Engine: inst.Engine, Status: inst.Status}}, nil
}

func (s *Server) describeInstances(form url.Values) (any, *fault) {
	iid := form.Get("DBInstanceIdentifier")
	inst, ok := s.instances[iid]
	if !ok {
		return nil, notFound("DBInstanceNotFound", "DBInstance "+iid)
	}
	if inst.Status == "creating" {
		if inst.pollsUntilAvailable <= 0 {
			inst.Status = "available"
		}
		inst.pollsUntilAvailable--
	}
	return struct {
		X []xmlInstance `xml:"DBInstances>DBInstance"`
	}{[]xmlInstance{{ID: inst.ID, ClusterID: inst.ClusterID, Class: inst.Class, Engine: inst.Engine, Status: inst.Status}}}, nil
}

func (s *Server) accountAttributes() any {
	type quota struct {
		Name string `xml:"AccountQuotaName"`
		Used int64  `xml:"Used"`
		Max  int64  `xml:"Max"`
	}
	return struct {
		Q []quota `xml:"AccountQuotas>AccountQuota"`
	}{[]quota{{"DBClusters", int64(len(s.clusters)), 40}, {"ManualClusterSnapshots", s.manualCount(), s.quotaMax}}}
}
