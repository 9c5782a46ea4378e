using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Time.Testing;
using RollingReboot.Core.Ports;
using RollingReboot.Lab.CloudStack;

namespace RollingReboot.CloudStack.Tests;

/// <summary>
/// The lab's CloudStack behaving as the real one's source says (ApiServlet, ApiServer, BaseListCmd, QueryManagerImpl,
/// ResourceManagerImpl, ClusteredAgentManagerImpl, XenServerConnectionPool), checked over HTTP, by hand and with the client.
/// </summary>
public class LabCloudStackFidelityTests
{
    private static readonly TimeSpan s_upTimeout = TimeSpan.FromMinutes(8);

    private static async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(LabServer lab, HttpMethod method, IEnumerable<KeyValuePair<string, string>> parameters, DateTimeOffset? expires)
    {
        using var http = new HttpClient();
        var query = new CloudStackSigner(lab.ApiKey, lab.SecretKey).Sign(parameters, expires);
        using var response = method == HttpMethod.Get
            ? await http.GetAsync(new Uri(lab.Endpoint + "?" + query))
            : await http.PostAsync(lab.Endpoint, new StringContent(query, Encoding.UTF8, "application/x-www-form-urlencoded"));
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return (response.StatusCode, document.RootElement.EnumerateObject().Single().Value.Clone());
    }

    private static DateTimeOffset Wall(double minutes) => TimeProvider.System.GetUtcNow() + TimeSpan.FromMinutes(minutes);

    [Fact]
    public async Task EnforcedPostAndTimestamps_TheClientWorks_GetForAChange400_V1And20MinutesAhead401()
    {
        await using var lab = await LabServer.StartAsync(settings: new LabCloudStackSettings { EnforcePostRequestsAndTimestamps = true, ScanInterval = TimeSpan.FromSeconds(30) });
        using var client = lab.Client();
        KeyValuePair<string, string>[] update = [new("command", "updateCluster"), new("id", lab.CloudStack.ClusterId), new("allocationstate", "Enabled"), new("response", "json")];
        KeyValuePair<string, string>[] list = [new("command", "listClusters"), new("response", "json")];

        Assert.Single(await client.FindClustersAsync(LabServer.ClusterName, null));
        Assert.Equal("Unmanaged", await client.SetManagedStateAsync(lab.CloudStack.ClusterId, managed: false));

        var get = await SendAsync(lab, HttpMethod.Get, update, Wall(5));
        Assert.Equal(HttpStatusCode.BadRequest, get.Status);
        Assert.Equal("State changing command updateCluster needs to be sent using POST request", get.Body.GetProperty("errortext").GetString());
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(lab, HttpMethod.Post, update, Wall(5))).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(lab, HttpMethod.Get, list, null)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(lab, HttpMethod.Get, list, Wall(20))).Status);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(lab, HttpMethod.Get, list, Wall(14))).Status);
    }

    [Fact]
    public async Task DeniedCommand_Is401NotAvailableForUser_AndTheClientSaysItIsTheRole()
    {
        await using var lab = await LabServer.StartAsync(settings: new LabCloudStackSettings { DeniedCommands = ["listAsyncJobs"] });
        using var client = lab.Client();

        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.ListPendingAsyncJobsAsync());
        var raw = await SendAsync(lab, HttpMethod.Get, [new("command", "listAsyncJobs"), new("response", "json")], Wall(5));

        Assert.Equal(401, ex.ErrorCode);
        Assert.Contains("does not allow listAsyncJobs", ex.Message, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, raw.Status);
        Assert.Equal("The given command 'listAsyncJobs' either does not exist, is not available for user.", raw.Body.GetProperty("errortext").GetString());
        Assert.Equal(9999, raw.Body.GetProperty("cserrorcode").GetInt32());
    }

    [Fact]
    public async Task DefaultPageSize100_Paging431s_AndTheClientReadsEveryVm()
    {
        var pool = FakePool.ThreeHosts();
        for (var i = 0; i < 246; i++)
        {
            pool.AddVm($"i-3-{100 + i}-VM", $"xen{1 + (i % 3)}", "Running", null);
        }

        await using var lab = await LabServer.StartAsync(settings: new LabCloudStackSettings { DefaultPageSize = 100 }, pool: pool);
        KeyValuePair<string, string>[] vms = [new("command", "listVirtualMachines"), new("listall", "true"), new("response", "json")];

        var firstPage = await SendAsync(lab, HttpMethod.Get, vms, Wall(5));
        var tooLarge = await SendAsync(lab, HttpMethod.Get, [.. vms, new("page", "1"), new("pagesize", "500")], Wall(5));
        var noPage = await SendAsync(lab, HttpMethod.Get, [.. vms, new("pagesize", "50")], Wall(5));
        var noSize = await SendAsync(lab, HttpMethod.Get, [.. vms, new("page", "2")], Wall(5));
        using var client = lab.Client();
        using var configured = lab.Client(pageSize: 500);

        Assert.Equal((HttpStatusCode.OK, 250, 100), (firstPage.Status, firstPage.Body.GetProperty("count").GetInt32(), firstPage.Body.GetProperty("virtualmachine").GetArrayLength()));
        Assert.Equal((HttpStatusCode)431, tooLarge.Status);
        Assert.Equal("Page size can't exceed max allowed page size value: 100", tooLarge.Body.GetProperty("errortext").GetString());
        Assert.Equal(4350, tooLarge.Body.GetProperty("cserrorcode").GetInt32());
        Assert.Equal("\"page\" parameter is required when \"pagesize\" is specified", noPage.Body.GetProperty("errortext").GetString());
        Assert.Equal("\"pagesize\" parameter is required when \"page\" is specified", noSize.Body.GetProperty("errortext").GetString());
        // 250 guests, one of them halted (on no host).
        Assert.Equal(249, (await client.ListVirtualMachinesAsync(lab.CloudStack.ClusterId)).Count);
        Assert.Equal(249, (await configured.ListVirtualMachinesAsync(lab.CloudStack.ClusterId)).Count);
    }

    [Fact]
    public async Task ProjectVms_HiddenUnlessAProjectIsAskedFor_ProjectJobsNeverListed_TheClientSeesBoth()
    {
        const string migrate = "org.apache.cloudstack.api.command.admin.vm.MigrateVMCmd";
        await using var lab = await LabServer.StartAsync(
            spec: new LabCloudStackClusterSpec { Vms = [new LabCsVm("i-2-11-VM", Project: "web"), new LabCsVm("i-2-12-VM", Account: "alice")] },
            asyncJobs: [new LabAsyncJob(migrate, Vm: "i-2-11-VM", Account: "alice"), new LabAsyncJob(migrate, Vm: "i-2-10-VM", Project: "web")]);
        KeyValuePair<string, string>[] vms = [new("command", "listVirtualMachines"), new("listall", "true"), new("response", "json")];

        var accounts = await SendAsync(lab, HttpMethod.Get, vms, Wall(5));
        var projects = await SendAsync(lab, HttpMethod.Get, [.. vms, new("projectid", "-1")], Wall(5));
        var own = await SendAsync(lab, HttpMethod.Get, [new("command", "listVirtualMachines"), new("response", "json")], Wall(5));
        using var client = lab.Client();
        var seen = await client.ListVirtualMachinesAsync(lab.CloudStack.ClusterId);
        var jobs = await client.ListPendingAsyncJobsAsync();

        string[] Names(JsonElement body) => [.. body.GetProperty("virtualmachine").EnumerateArray().Select(v => v.GetProperty("instancename").GetString()!)];
        Assert.Equal(["i-2-10-VM", "i-2-12-VM", "i-2-13-VM"], Names(accounts.Body));
        Assert.Equal(["i-2-11-VM"], Names(projects.Body));
        // Without listall a root admin sees its own account's VMs only.
        Assert.Equal(2, own.Body.GetProperty("count").GetInt32());
        var projectVm = projects.Body.GetProperty("virtualmachine")[0];
        Assert.Equal("web", projectVm.GetProperty("project").GetString());
        Assert.False(projectVm.TryGetProperty("account", out _));
        Assert.Equal(["i-2-10-VM", "i-2-11-VM", "i-2-12-VM"], seen.Select(v => v.InstanceName).Order(StringComparer.Ordinal));
        var job = Assert.Single(jobs);
        Assert.Equal(("alice", seen.Single(v => v.InstanceName == "i-2-11-VM").Id), (job.Account, job.InstanceId));
    }

    [Fact]
    public async Task NameAndKeywordFilters_AreSubstrings_AsTheListCommandsLikeThem()
    {
        await using var lab = await LabServer.StartAsync();

        var byKeyword = await SendAsync(lab, HttpMethod.Get, [new("command", "listVirtualMachines"), new("listall", "true"), new("keyword", "2-1"), new("response", "json")], Wall(5));
        var hosts = await SendAsync(lab, HttpMethod.Get, [new("command", "listHosts"), new("name", "EN"), new("response", "json")], Wall(5));
        var hostKeyword = await SendAsync(lab, HttpMethod.Get, [new("command", "listHosts"), new("keyword", "xen3"), new("response", "json")], Wall(5));
        var clusters = await SendAsync(lab, HttpMethod.Get, [new("command", "listClusters"), new("keyword", "ster-"), new("response", "json")], Wall(5));

        // i-2-10-VM to i-2-13-VM (halted too): the keyword matches the instance name.
        Assert.Equal(4, byKeyword.Body.GetProperty("count").GetInt32());
        Assert.Equal(3, hosts.Body.GetProperty("count").GetInt32());
        Assert.Equal("xen3", hostKeyword.Body.GetProperty("host")[0].GetProperty("name").GetString());
        Assert.Equal(1, clusters.Body.GetProperty("count").GetInt32());
    }

    [Fact]
    public async Task PrepareUnmanagedError_UpHostsStillPinged_ADownHostIsAViolation_UnmanagingAgainWorks()
    {
        await using var lab = await LabServer.StartAsync(managedState: "PrepareUnmanagedError",
            spec: new LabCloudStackClusterSpec { Hosts = [new LabCsHost("xen2", InitialState: "Disconnected")] });
        using var client = lab.Client();
        Assert.Equal(["Up", "Disconnected", "Up"], (await client.ListHostsAsync(lab.CloudStack.ClusterId)).Select(h => h.State));

        lab.Pool.SetLive("xen3", false);
        lab.CloudStack.OnPoolChanged();
        var violation = Assert.Single(lab.Audit.Violations);
        lab.Pool.SetLive("xen3", true);

        Assert.Contains("was PrepareUnmanagedError", violation, StringComparison.Ordinal);
        Assert.Equal("Unmanaged", await client.SetManagedStateAsync(lab.CloudStack.ClusterId, managed: false));
        Assert.All(await client.ListHostsAsync(lab.CloudStack.ClusterId), h => Assert.NotEqual("Up", h.State));
    }

    [Fact]
    public async Task Managed_HostsWaitForTheAgentScan_ThenConnectOneAtATime()
    {
        // The lab's clock moves only when the test moves it, a second at a time with an HTTP round trip in between: how long
        // the schedule takes is the lab's own, never a loaded machine's late timers.
        var clock = new FakeTimeProvider(new DateTimeOffset(2031, 11, 22, 12, 0, 0, TimeSpan.Zero));
        await using var lab = await LabServer.StartAsync(managedState: "Unmanaged", clock: clock);
        using var client = lab.Client();
        var clusterId = lab.CloudStack.ClusterId;
        var settings = lab.CloudStack.Settings;

        clock.Advance(TimeSpan.FromSeconds(7));
        var asked = lab.Audit.SimulatedSeconds;
        await client.SetManagedStateAsync(clusterId, managed: true);
        Assert.All(await client.ListHostsAsync(clusterId), h => Assert.Equal("Disconnected", h.State));
        for (var second = 0; second < 600; second++)
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            if ((await client.ListHostsAsync(clusterId)).All(h => h.State == "Up"))
            {
                break;
            }
        }

        // ClusteredAgentManagerImpl: the direct-agent scan runs every scan interval from the start (the first after 83 s here),
        // then loads its hosts one after another, each taking the connect time.
        var scan = Assert.Single(lab.Audit.Events, e => e.Type == "cloudstack.scan");
        Assert.InRange(scan.At, settings.ScanInterval.TotalSeconds, settings.ScanInterval.TotalSeconds + 1);
        var states = lab.Audit.Events.Where(e => e.Type == "cloudstack.hostState").ToList();
        Assert.Equal(["xen1 Connecting", "xen1 Up", "xen2 Connecting", "xen2 Up", "xen3 Connecting", "xen3 Up"],
            states.Select(e => $"{e.Fields["host"]} {e.Fields["state"]}"));
        var connect = settings.ConnectTime.TotalSeconds;
        Assert.All(states.Select((e, i) => (e.At - scan.At, i)), t => Assert.InRange(t.Item1, (t.i + 1) / 2 * connect, (t.i + 1) / 2 * connect + t.i + 1));
        Assert.InRange(states[^1].At - asked, settings.ScanInterval.TotalSeconds - 7 + 3 * connect, settings.ScanInterval.TotalSeconds - 7 + 3 * connect + 7);
    }

    [Fact]
    public async Task Managed_AHostXapiShowsDisabled_GoesAlert_ADisabledMaster_KeepsThePoolFromConnecting()
    {
        await using var lab = await LabServer.StartAsync(managedState: "Unmanaged");
        using var client = lab.Client();
        var clusterId = lab.CloudStack.ClusterId;
        lab.Pool.SetEnabled("xen3", false);

        await client.SetManagedStateAsync(clusterId, managed: true);
        // Wait for the lab's scan to have tried xen3 (on the lab's clock, however loaded the machine), then ask once.
        await UntilAsync(() => lab.Audit.Events.Any(e => e.Type == "cloudstack.connectFailed" && (string?)e.Fields["host"] == "xen3"));
        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.WaitForHostsUpAsync(clusterId, TimeSpan.Zero));
        Assert.Contains("xen3 is Alert", ex.Message, StringComparison.Ordinal);
        Assert.Contains(lab.Audit.Events, e => e.Type == "cloudstack.connectFailed" && (string?)e.Fields["reason"] == "Cannot connect this host 127.0.0.13 due to the host is not enabled");

        await client.SetManagedStateAsync(clusterId, managed: false);
        lab.Pool.SetEnabled("xen3", true);
        lab.Pool.SetEnabled("xen1", false);
        await client.SetManagedStateAsync(clusterId, managed: true);
        await Assert.ThrowsAsync<CloudStackException>(() => client.WaitForHostsUpAsync(clusterId, TimeSpan.FromMinutes(6)));
        // Each try fails, and a later scan tries again: none comes Up.
        Assert.All(await client.ListHostsAsync(clusterId), h => Assert.NotEqual("Up", h.State));
        var masterRefusals = lab.Audit.Events.Where(e => e.Type == "cloudstack.connectFailed" && (string?)e.Fields["reason"] == "Unable to create master connection, due to master Host 127.0.0.11 is not enabled");
        Assert.Equal(["xen1", "xen2", "xen3"], masterRefusals.Select(e => (string)e.Fields["host"]!).Distinct().Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task ResourceStatesTagsDedicationOfferingsAndAffinityTypes_AreListedAsCloudStackShowsThem()
    {
        await using var lab = await LabServer.StartAsync(spec: new LabCloudStackClusterSpec
        {
            Hosts = [new LabCsHost("xen2", "Maintenance", ["ssd"]), new LabCsHost("xen3", HostTags: ["ssd", "gpu"], DedicatedTo: "ops")],
            ServiceOfferings = [new LabServiceOffering("fast", "ssd,gpu")],
            Vms = [new LabCsVm("i-2-12-VM", Account: "ops", ServiceOffering: "fast")],
            AffinityGroups = [new LabAffinityGroup("db", CloudStackAffinityTypes.HostAffinity, ["i-2-10-VM", "i-2-11-VM"]), new LabAffinityGroup("DedicatedGrp-ops", CloudStackAffinityTypes.ExplicitDedication, ["i-2-12-VM"])],
        });
        using var client = lab.Client();

        var hosts = await client.ListHostsAsync(lab.CloudStack.ClusterId);
        var vms = await client.ListVirtualMachinesAsync(lab.CloudStack.ClusterId);
        var dedicated = Assert.Single(await client.ListDedicatedHostsAsync());

        Assert.Equal(["Enabled", "Maintenance", "Enabled"], hosts.Select(h => h.ResourceState));
        Assert.Equal(["ssd", "gpu"], hosts[2].HostTags);
        Assert.Equal((hosts[2].Id, "xen3"), (dedicated.HostId, dedicated.HostName));
        var ops = vms.Single(v => v.InstanceName == "i-2-12-VM");
        Assert.Equal(["ssd", "gpu"], ops.RequiredHostTags);
        Assert.Equal(dedicated.AffinityGroupId, ops.AffinityGroups.Single(g => g.Type == CloudStackAffinityTypes.ExplicitDedication).Id);
        Assert.Equal(["host anti-affinity", "host affinity"], vms.Single(v => v.InstanceName == "i-2-10-VM").AffinityGroups.Select(g => g.Type));
    }

    [Fact]
    public async Task StaleVmFault_CloudStackKeepsShowingTheVmOnItsFirstHost()
    {
        await using var lab = await LabServer.StartAsync(faults: [new CloudStackStaleVmFault("i-2-10-VM")]);
        using var client = lab.Client();

        lab.Pool.MoveVm("i-2-10-VM", "xen3");
        lab.Pool.MoveVm("i-2-11-VM", "xen3");
        var vms = await client.ListVirtualMachinesAsync(lab.CloudStack.ClusterId);

        Assert.Equal("xen1", vms.Single(v => v.InstanceName == "i-2-10-VM").HostName);
        Assert.Equal("xen3", vms.Single(v => v.InstanceName == "i-2-11-VM").HostName);
    }

    /// <summary>Polls the condition until it holds; gives up after a minute of polling (a guard against a hang, not a measure).</summary>
    private static async Task UntilAsync(Func<bool> condition)
    {
        for (int i = 0; i < 6000 && !condition(); i++)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(10), TimeProvider.System);
        }

        Assert.True(condition(), "the lab never tried to connect xen3");
    }
}
