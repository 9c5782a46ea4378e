using System.Net;
using System.Text.Json;
using RollingReboot.Core.Ports;
using RollingReboot.Lab.CloudStack;

namespace RollingReboot.CloudStack.Tests;

/// <summary>The client against the lab's CloudStack over real HTTP, on a clock 100 times faster than the wall.</summary>
public class LabCloudStackTests
{
    private static readonly TimeSpan s_hostsUpTimeout = TimeSpan.FromMinutes(8);

    [Fact]
    public async Task FindClusters_ByNameAndZone_FindsTheLabCluster()
    {
        await using var lab = await LabServer.StartAsync();
        using var client = lab.Client();

        var byName = await client.FindClustersAsync(LabServer.ClusterName, null);
        var byZoneId = await client.FindClustersAsync(LabServer.ClusterName, lab.CloudStack.ZoneId);
        var inOtherZone = await client.FindClustersAsync(LabServer.ClusterName, "ZONE-2");
        var partialName = await client.FindClustersAsync("CLUSTER", null);

        var cluster = Assert.Single(byName);
        Assert.Equal(new CloudStackCluster(lab.CloudStack.ClusterId, "CLUSTER-1", lab.CloudStack.ZoneId, "ZONE-1", "POD-1", "XenServer", "Enabled", "Managed"), cluster);
        Assert.Equal(cluster, Assert.Single(byZoneId));
        Assert.Empty(inOtherZone);
        Assert.Empty(partialName);
    }

    [Fact]
    public async Task SetManagedState_Unmanage_DisconnectsEveryHostAndEndsUnmanaged()
    {
        await using var lab = await LabServer.StartAsync();
        using var client = lab.Client();
        var clusterId = lab.CloudStack.ClusterId;
        Assert.All(await client.ListHostsAsync(clusterId), h => Assert.Equal("Up", h.State));

        var state = await client.SetManagedStateAsync(clusterId, managed: false);

        Assert.Equal("Unmanaged", state);
        var hosts = await client.ListHostsAsync(clusterId);
        Assert.Equal(["xen1", "xen2", "xen3"], hosts.Select(h => h.Name));
        Assert.All(hosts, h => Assert.Equal("Disconnected", h.State));
        Assert.Equal(["PrepareUnmanaged", "Unmanaged"], lab.Audit.Values("cloudstack.managedState", "value"));
        Assert.Equal(3, lab.Audit.Values("cloudstack.hostState", "state").Count(s => s == "Disconnected"));
        Assert.Empty(lab.Audit.Violations);
    }

    [Fact]
    public async Task SetManagedState_ManageAfterUnmanage_HostsReconnectUntilUp()
    {
        await using var lab = await LabServer.StartAsync(managedState: "Unmanaged");
        using var client = lab.Client();
        var clusterId = lab.CloudStack.ClusterId;
        Assert.All(await client.ListHostsAsync(clusterId), h => Assert.Equal("Disconnected", h.State));

        var state = await client.SetManagedStateAsync(clusterId, managed: true);
        var hosts = await client.WaitForHostsUpAsync(clusterId, s_hostsUpTimeout);

        Assert.Equal("Managed", state);
        Assert.Equal(3, hosts.Count);
        var hostStates = lab.Audit.Values("cloudstack.hostState", "state");
        Assert.Equal(3, hostStates.Count(s => s == "Connecting"));
        Assert.Equal(3, hostStates.Count(s => s == "Up"));
        Assert.Empty(lab.Audit.Violations);
    }

    [Fact]
    public async Task SetManagedState_ManageWhileAHostIsDown_LeavesItAlertUntilItIsLive()
    {
        await using var lab = await LabServer.StartAsync();
        using var client = lab.Client();
        var clusterId = lab.CloudStack.ClusterId;
        await client.SetManagedStateAsync(clusterId, managed: false);
        lab.Pool.SetLive("xen2", false);
        lab.CloudStack.OnPoolChanged();

        await client.SetManagedStateAsync(clusterId, managed: true);
        // The scan loads every host once their last ping is a ping timeout (150 s) old; xen2 does not answer and goes
        // Alert. It stays Alert for a ping timeout and a scan (then it is let go and loaded again, Connecting for 10 s),
        // so the bounded wait is asked once it is Alert, not timed to end somewhere in that cycle.
        var until = lab.Clock.GetUtcNow() + TimeSpan.FromMinutes(10);
        while ((await client.ListHostsAsync(clusterId)).Single(h => h.Name == "xen2").State != "Alert")
        {
            Assert.True(lab.Clock.GetUtcNow() < until, "xen2 never went Alert");
            await Task.Delay(TimeSpan.FromSeconds(1), lab.Clock);
        }

        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.WaitForHostsUpAsync(clusterId, TimeSpan.FromSeconds(10)));

        Assert.Contains("xen2 is Alert", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("xen1", ex.Message, StringComparison.Ordinal);

        // Back: after another ping timeout CloudStack lets the Alert host go, and a later scan loads it.
        lab.Pool.SetLive("xen2", true);
        lab.CloudStack.OnPoolChanged();
        await client.WaitForHostsUpAsync(clusterId, s_hostsUpTimeout);
        Assert.Empty(lab.Audit.Violations);
    }

    [Fact]
    public async Task SetManagedState_UnmanageFailsFault_EndsPrepareUnmanagedErrorWithAClearException()
    {
        await using var lab = await LabServer.StartAsync(faults: [new UnmanageFailsFault()]);
        using var client = lab.Client();

        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.SetManagedStateAsync(lab.CloudStack.ClusterId, managed: false));

        Assert.Equal(530, ex.ErrorCode);
        Assert.Contains("could not unmanage cluster CLUSTER-1", ex.Message, StringComparison.Ordinal);
        Assert.Contains("PrepareUnmanagedError", ex.Message, StringComparison.Ordinal);
        Assert.Contains("PrepareUnmanaged Failed", ex.Message, StringComparison.Ordinal);
        Assert.Equal("PrepareUnmanagedError", lab.CloudStack.ManagedState);
        Assert.True(lab.Audit.SimulatedSeconds >= 200, $"CloudStack gave up after {lab.Audit.SimulatedSeconds} s");
        Assert.All(await client.ListHostsAsync(lab.CloudStack.ClusterId), h => Assert.Equal("Up", h.State));
        Assert.Equal(1, lab.CloudStack.CallCount("updateCluster"));

        // Restoring Managed from PrepareUnmanagedError works.
        Assert.Equal("Managed", await client.SetManagedStateAsync(lab.CloudStack.ClusterId, managed: true));
    }

    [Theory]
    [InlineData(429)]
    [InlineData(503)]
    public async Task ErrorFault_OnListClusters_ApiLimitOrUnavailable_IsRetriedAndSucceeds(int errorCode)
    {
        await using var lab = await LabServer.StartAsync(faults: [new CloudStackErrorFault("listClusters", 2, errorCode)]);
        using var client = lab.Client();

        var clusters = await client.FindClustersAsync(LabServer.ClusterName, null);

        Assert.Single(clusters);
        Assert.Equal(3, lab.CloudStack.CallCount("listClusters"));
    }

    [Fact]
    public async Task ErrorFault_OnListClusters_530_IsNotRetried()
    {
        await using var lab = await LabServer.StartAsync(faults: [new CloudStackErrorFault("listClusters", 1, 530)]);
        using var client = lab.Client();

        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.FindClustersAsync(LabServer.ClusterName, null));

        Assert.Equal((530, 4250), (ex.ErrorCode, ex.CsErrorCode));
        Assert.Equal(1, lab.CloudStack.CallCount("listClusters"));
    }

    [Fact]
    public async Task ErrorFault_OnUpdateCluster_IsNotRetriedAndTheStateIsReRead()
    {
        await using var lab = await LabServer.StartAsync(faults: [new CloudStackErrorFault("updateCluster", 1, 530)]);
        using var client = lab.Client();

        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.SetManagedStateAsync(lab.CloudStack.ClusterId, managed: false));

        Assert.Equal(530, ex.ErrorCode);
        Assert.Contains("left cluster CLUSTER-1 Managed", ex.Message, StringComparison.Ordinal);
        Assert.Equal(1, lab.CloudStack.CallCount("updateCluster"));
        Assert.Equal("Managed", lab.CloudStack.ManagedState);
    }

    [Fact]
    public async Task WrongSecretKey_Is401WithAClearMessage()
    {
        await using var lab = await LabServer.StartAsync();
        const string wrongSecret = "not-the-secret-key-at-all-0123456789";
        using var client = lab.Client(secretKey: wrongSecret);

        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.FindClustersAsync(LabServer.ClusterName, null));

        Assert.Equal(401, ex.ErrorCode);
        Assert.Contains("API key or secret key is wrong", ex.Message, StringComparison.Ordinal);
        Assert.Contains("unable to verify user credentials and/or request signature", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(wrongSecret, ex.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(lab.SecretKey, ex.ToString(), StringComparison.Ordinal);
        Assert.Equal(0, lab.CloudStack.CallCount("listClusters"));
    }

    [Fact]
    public async Task DeveloperGuideVector_VerifiesWithTheLabsVerifier_AndAWrongSignatureIs401()
    {
        // The developer guide's vector signs listUsers, which the lab does not serve: its verifier is checked directly.
        var vector = new Dictionary<string, string>
        {
            ["apikey"] = CloudStackSignerTests.GuideApiKey,
            ["command"] = "listUsers",
            ["response"] = "json",
            ["signature"] = "TTpdDq/7j/J58XCRHomKoQXEQds=",
        };
        Assert.True(LabSignatureVerifier.Verify(vector, CloudStackSignerTests.GuideSecretKey));
        Assert.False(LabSignatureVerifier.Verify(new Dictionary<string, string>(vector) { ["signature"] = "UTpdDq/7j/J58XCRHomKoQXEQds=" }, CloudStackSignerTests.GuideSecretKey));

        await using var lab = await LabServer.StartAsync(apiKey: CloudStackSignerTests.GuideApiKey, secretKey: CloudStackSignerTests.GuideSecretKey);
        using var http = new HttpClient();
        var signer = new CloudStackSigner(lab.ApiKey, lab.SecretKey);
        var query = signer.Sign([new("command", "listZones"), new("response", "json")]);
        using var good = await http.GetAsync(new Uri(lab.Endpoint + "?" + query));
        using var tampered = await http.GetAsync(new Uri(lab.Endpoint + "?" + query[..^3] + "AAA"));

        Assert.Equal(HttpStatusCode.OK, good.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, tampered.StatusCode);
        using var body = JsonDocument.Parse(await tampered.Content.ReadAsStringAsync());
        var error = body.RootElement.GetProperty("listzonesresponse");
        Assert.Equal(401, error.GetProperty("errorcode").GetInt32());
        Assert.Equal("unable to verify user credentials and/or request signature", error.GetProperty("errortext").GetString());
        Assert.False(error.TryGetProperty("cserrorcode", out _));
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public async Task AwkwardValues_GetOrPost_SignatureV2OrV3_AreAccepted(bool post, bool signatureVersion3)
    {
        await using var lab = await LabServer.StartAsync();
        using var client = lab.Client(post, signatureVersion3);

        var none = await client.FindClustersAsync("CLUSTER 1*~+é=&😀/?%", null);
        var found = await client.FindClustersAsync(LabServer.ClusterName, "ZONE-1");

        Assert.Empty(none);
        Assert.Single(found);
        Assert.Equal(2, lab.CloudStack.CallCount("listClusters"));
    }

    [Fact]
    public async Task SignatureVersion3_ExpiresIsCheckedAgainstTheWallClock_NotTheLabsSimulatedOne()
    {
        // The lab's simulated clock starts in 2031 and runs 100 times faster; CloudStack checks expires against the real time.
        await using var lab = await LabServer.StartAsync();
        using var http = new HttpClient();
        var signer = new CloudStackSigner(lab.ApiKey, lab.SecretKey);
        KeyValuePair<string, string>[] parameters = [new("command", "listClusters"), new("response", "json")];
        var wall = TimeProvider.System.GetUtcNow();

        using var fresh = await http.GetAsync(new Uri(lab.Endpoint + "?" + signer.Sign(parameters, wall + TimeSpan.FromMinutes(10))));
        using var expired = await http.GetAsync(new Uri(lab.Endpoint + "?" + signer.Sign(parameters, wall - TimeSpan.FromMinutes(1))));
        using var farAhead = await http.GetAsync(new Uri(lab.Endpoint + "?" + signer.Sign(parameters, lab.Clock.GetUtcNow() + TimeSpan.FromMinutes(10))));

        Assert.Equal(HttpStatusCode.OK, fresh.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, expired.StatusCode);
        // Without enforce.post.requests.and.timestamps any future expiry passes, even the simulated clock's.
        Assert.Equal(HttpStatusCode.OK, farAhead.StatusCode);
    }

    [Fact]
    public async Task ListVirtualMachines_GuestVmsWithInstanceNamesHostsAndAffinityGroups()
    {
        await using var lab = await LabServer.StartAsync();
        using var client = lab.Client();

        var vms = await client.ListVirtualMachinesAsync(lab.CloudStack.ClusterId);

        Assert.Equal(["i-2-10-VM", "i-2-11-VM", "i-2-12-VM"], vms.Select(v => v.InstanceName));
        Assert.Equal(["xen1", "xen2", "xen3"], vms.Select(v => v.HostName));
        var web = vms.Where(v => v.AffinityGroups.Count > 0).ToList();
        Assert.Equal(2, web.Count);
        Assert.All(web, v => Assert.Equal(("web", "host anti-affinity"), (v.AffinityGroups[0].Name, v.AffinityGroups[0].Type)));
        Assert.Equal(web[0].AffinityGroups[0].Id, web[1].AffinityGroups[0].Id);
        Assert.Empty(vms[2].AffinityGroups);
        Assert.DoesNotContain(vms, v => v.Id == v.InstanceName);
    }

    [Fact]
    public async Task ListAsyncJobs_ScenarioJobs_PendingUntilTheirDurationWithCloudStacksFields()
    {
        const string migrate = "org.apache.cloudstack.api.command.admin.vm.MigrateVMCmd";
        const string maintenance = "org.apache.cloudstack.api.command.admin.host.PrepareForMaintenanceCmd";
        await using var lab = await LabServer.StartAsync(asyncJobs:
        [
            new LabAsyncJob(migrate, Vm: "i-2-11-VM", Account: "tenant"),
            new LabAsyncJob(maintenance, Host: "xen3", DurationSeconds: 60),
            new LabAsyncJob("org.apache.cloudstack.api.command.admin.cluster.UpdateClusterCmd", Cluster: true, DurationSeconds: 100_000),
        ]);
        using var client = lab.Client(signatureVersion3: true);
        var vmId = (await client.ListVirtualMachinesAsync(lab.CloudStack.ClusterId)).Single(v => v.InstanceName == "i-2-11-VM").Id;
        var hostId = (await client.ListHostsAsync(lab.CloudStack.ClusterId)).Single(h => h.Name == "xen3").Id;

        var pending = await client.ListPendingAsyncJobsAsync();

        Assert.Equal([("VirtualMachine", vmId, "tenant"), ("Host", hostId, "admin"), ("Cluster", lab.CloudStack.ClusterId, "admin")],
            pending.Select(j => (j.InstanceType, j.InstanceId, j.Account)));
        Assert.All(pending, j => Assert.True(j.Created < lab.Clock.GetUtcNow()));
        Assert.Equal(3, pending.Select(j => j.JobId).Distinct().Count());

        // Without listall, CloudStack lists the caller's own jobs only.
        var own = await client.ExecuteAsync("listAsyncJobs");
        Assert.Equal(2, own.GetProperty("count").GetInt32());
        var keyword = await client.ExecuteAsync("listAsyncJobs", new Dictionary<string, string> { ["listall"] = "true", ["keyword"] = "MigrateVM" });
        Assert.Equal(migrate, keyword.GetProperty("asyncjobs")[0].GetProperty("cmd").GetString());

        // The maintenance job ends after 60 simulated seconds; queryAsyncJobResult knows it.
        await Task.Delay(TimeSpan.FromSeconds(61), lab.Clock);
        var after = await client.ListPendingAsyncJobsAsync();
        Assert.DoesNotContain(after, j => j.InstanceType == "Host");
        var result = await client.WaitForAsyncJobAsync(pending[1].JobId);
        Assert.Equal(JsonValueKind.Object, result.ValueKind);
        var unknown = await Assert.ThrowsAsync<CloudStackException>(() => client.WaitForAsyncJobAsync(Guid.NewGuid().ToString()));
        Assert.Equal(431, unknown.ErrorCode);
    }

    [Fact]
    public async Task ListAsyncJobs_BadSignature_Is401()
    {
        await using var lab = await LabServer.StartAsync(asyncJobs: [new LabAsyncJob("X", Host: "xen1")]);
        using var client = lab.Client(secretKey: "wrong-secret");

        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.ListPendingAsyncJobsAsync());

        Assert.Equal(401, ex.ErrorCode);
    }

    [Fact]
    public async Task HostDown_WhileManaged_IsAViolationAndTheHostAlert()
    {
        await using var lab = await LabServer.StartAsync();

        lab.Pool.SetLive("xen1", false);
        lab.CloudStack.OnHostDown("xen1");

        var violation = Assert.Single(lab.Audit.Violations);
        Assert.Contains("host xen1 went down while the cluster CLUSTER-1 was Managed", violation, StringComparison.Ordinal);
        Assert.Contains("i-2-10-VM", violation, StringComparison.Ordinal);
        Assert.Equal("Alert", lab.CloudStack.GetHostState("xen1"));
        Assert.Contains(lab.Audit.Events, e => e.Type == "cloudstack.haRecovery" && (string?)e.Fields["host"] == "xen1");

        // Reported once, not on every later change.
        lab.CloudStack.OnPoolChanged();
        Assert.Single(lab.Audit.Violations);
    }

    [Fact]
    public async Task HostDown_WhileUnmanaged_IsNotAViolation()
    {
        await using var lab = await LabServer.StartAsync();
        using var client = lab.Client();
        await client.SetManagedStateAsync(lab.CloudStack.ClusterId, managed: false);

        lab.Pool.SetLive("xen1", false);
        lab.CloudStack.OnPoolChanged();
        lab.Pool.SetLive("xen1", true);
        lab.CloudStack.OnPoolChanged();

        Assert.Empty(lab.Audit.Violations);
        Assert.Equal("Disconnected", lab.CloudStack.GetHostState("xen1"));
    }

    [Fact]
    public async Task QueryAsyncJobResult_UnknownJob_IsAParameterError()
    {
        await using var lab = await LabServer.StartAsync();
        using var client = lab.Client();

        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.WaitForAsyncJobAsync("4711"));

        Assert.Equal(431, ex.ErrorCode);
        Assert.Equal(4350, ex.CsErrorCode);
        Assert.Contains("jobid", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownCommand_Is401AsVerifyRequestAnswersIt_EvenWhenSigned()
    {
        await using var lab = await LabServer.StartAsync();
        using var http = new HttpClient();
        var signer = new CloudStackSigner(lab.ApiKey, lab.SecretKey);

        using var response = await http.PostAsync(lab.Endpoint,
            new StringContent(signer.Sign([new("command", "rebootHost"), new("id", "x"), new("response", "json")], TimeProvider.System.GetUtcNow() + TimeSpan.FromMinutes(5)),
                System.Text.Encoding.UTF8, "application/x-www-form-urlencoded"));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var error = body.RootElement.GetProperty("errorresponse");
        Assert.Equal("unable to verify user credentials and/or request signature", error.GetProperty("errortext").GetString());

        // The client, whose keys worked before, does not blame them.
        using var client = lab.Client();
        await client.FindClustersAsync(LabServer.ClusterName, null);
        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.ExecuteAsync("rebootHost", new Dictionary<string, string> { ["id"] = "x" }));
        Assert.Equal(401, ex.ErrorCode);
        Assert.Contains("with the API keys it accepted for earlier calls", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("is wrong", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UpdateCluster_LowercaseState_IsRefusedLikeJavaValueOf()
    {
        await using var lab = await LabServer.StartAsync();
        using var client = lab.Client();

        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.ExecuteAsync("updateCluster",
            new Dictionary<string, string> { ["id"] = lab.CloudStack.ClusterId, ["managedstate"] = "unmanaged" }));

        Assert.Equal(431, ex.ErrorCode);
        Assert.Equal("Managed", lab.CloudStack.ManagedState);
    }

    [Fact]
    public async Task AuditSnapshot_HasClusterStateAndHosts()
    {
        await using var lab = await LabServer.StartAsync();

        var json = JsonSerializer.Serialize(lab.CloudStack.AuditSnapshot());

        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        Assert.Equal("CLUSTER-1", root.GetProperty("clusterName").GetString());
        Assert.Equal("Managed", root.GetProperty("managedState").GetString());
        var host = root.GetProperty("hosts")[0];
        Assert.Equal("xen1", host.GetProperty("name").GetString());
        Assert.Equal("Up", host.GetProperty("state").GetString());
        Assert.Equal("Enabled", host.GetProperty("resourceState").GetString());
        Assert.DoesNotContain(lab.SecretKey, lab.CloudStack.ToString(), StringComparison.Ordinal);
    }
}
