using System.Globalization;
using System.Net;
using System.Security;
using System.Xml.Linq;

namespace RollingReboot.Lab.Tests;

/// <summary>
/// XML-RPC over HTTP with bodies written by hand, as a client written for real XenServer (XenAPI.py, xmlrpc.client)
/// would send them, read back with XDocument: the lab must understand arrays, structs and every integer form, and
/// answer in xapi's shapes. The project's client plays no part.
/// </summary>
public sealed class XmlRpcWireTests
{
    private const string TwoHosts = """
        { "pool": { "xapiVersion": "24.19.0" }, "migration": { "setupSeconds": 2 },
          "hosts": [ { "name": "m", "memoryMiB": 65536 }, { "name": "b", "memoryMiB": 65536, "rebootSeconds": 10 } ],
          "vms": [ { "name": "v1", "host": "m", "memoryMiB": 1024 }, { "name": "v2", "host": "b", "memoryMiB": 2048 } ] }
        """;

    private const string HaPool = """
        { "pool": { "ha": { "enabled": false } },
          "hosts": [ { "name": "m", "memoryMiB": 65536 }, { "name": "b", "memoryMiB": 65536 } ],
          "srs": [ { "name": "iso", "shared": true }, { "name": "nfs" }, { "name": "nfs2" } ],
          "vms": [ { "name": "v1", "host": "m", "memoryMiB": 2048, "srs": ["nfs"] } ] }
        """;

    [Fact]
    public async Task PoolEnableHa_SrArrayAndConfigurationMap_AreReadAsSent()
    {
        await using var lab = await Labs.StartAsync(HaPool);
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "m");
        var session = await LoginAsync(raw, m);
        var nfs = await RefAsync(raw, m, session, "SR", "nfs");
        var nfs2 = await RefAsync(raw, m, session, "SR", "nfs2");

        // Pretty-printed, strings both typed and bare, an escaped key and value: what XenAPI.py and friends send.
        var reply = await PostAsync(raw, m, $"""
            <?xml version="1.0"?>
            <methodCall>
              <methodName>pool.enable_ha</methodName>
              <params>
                <param>
                  <value><string>{session}</string></value>
                </param>
                <param>
                  <value>
                    <array>
                      <data>
                        <value><string>{nfs2}</string></value>
                        <value>{nfs}</value>
                      </data>
                    </array>
                  </value>
                </param>
                <param>
                  <value>
                    <struct>
                      <member>
                        <name>timeout</name>
                        <value><string>240</string></value>
                      </member>
                      <member><name>note &amp; more</name><value>a &lt;b&gt;</value></member>
                    </struct>
                  </value>
                </param>
              </params>
            </methodCall>
            """);

        var value = Success(reply);
        Assert.Equal("", value.Value);
        Assert.False(value.HasElements);
        var audit = lab.AuditJson();
        var enable = Audit.Events(audit, "ha.enable").Single();
        Assert.Equal(["nfs2", "nfs"], enable["requestedSrs"]!.AsArray().Select(s => s!.GetValue<string>()));
        // xapi_ha.ml: the statefile goes on the first SR only.
        Assert.Equal(["nfs2"], enable["heartbeatSrs"]!.AsArray().Select(s => s!.GetValue<string>()));
        Assert.Equal("240", enable["configuration"]!["timeout"]!.GetValue<string>());
        Assert.Equal("a <b>", enable["configuration"]!["note & more"]!.GetValue<string>());
        Assert.Equal(2, enable["configuration"]!.AsObject().Count);
        Assert.Equal("240", enable["timeoutSeconds"]!.GetValue<string>());
        Assert.True(audit["pool"]!["haEnabled"]!.GetValue<bool>());
        Assert.Equal(["nfs2"], audit["pool"]!["haHeartbeatSrs"]!.AsArray().Select(s => s!.GetValue<string>()));
    }

    [Fact]
    public async Task PoolEnableHa_EmptyArrayAndEmptyStruct_AreTheDefaults()
    {
        await using var lab = await Labs.StartAsync(HaPool);
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "m");
        var session = await LoginAsync(raw, m);

        Success(await PostAsync(raw, m, Call("pool.enable_ha", $"<value>{session}</value>", "<value><array><data/></array></value>", "<value><struct/></value>")));

        var enable = Audit.Events(lab.AuditJson(), "ha.enable").Single();
        Assert.Equal(["nfs"], enable["heartbeatSrs"]!.AsArray().Select(s => s!.GetValue<string>()));
        Assert.Empty(enable["configuration"]!.AsObject());
        Assert.Equal("60", enable["timeoutSeconds"]!.GetValue<string>());
    }

    [Fact]
    public async Task VmPoolMigrate_OptionsMap_IsReadAsSent_AndTheVmMoves()
    {
        await using var lab = await Labs.StartAsync(TwoHosts);
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "m");
        var session = await LoginAsync(raw, m);
        var v1 = await RefAsync(raw, m, session, "VM", "v1");
        var b = await RefAsync(raw, m, session, "host", "b");

        var reply = await PostAsync(raw, m, $"""
            <?xml version="1.0"?>
            <methodCall>
              <methodName>VM.pool_migrate</methodName>
              <params>
                <param><value>{session}</value></param>
                <param><value>{v1}</value></param>
                <param><value><string>{b}</string></value></param>
                <param>
                  <value><struct>
                    <member><name>live</name><value>true</value></member>
                    <member><name>force</name><value><string>false</string></value></member>
                  </struct></value>
                </param>
              </params>
            </methodCall>
            """);

        Success(reply);
        var audit = lab.AuditJson();
        var start = Audit.Events(audit, "migration.start", vm: "v1").Single();
        Assert.Equal(("m", "b"), (start["from"]!.GetValue<string>(), start["to"]!.GetValue<string>()));
        var options = start["options"]!.AsObject();
        Assert.Equal(2, options.Count);
        Assert.Equal("true", options["live"]!.GetValue<string>());
        Assert.Equal("false", options["force"]!.GetValue<string>());
        Assert.Equal("b", Audit.Vm(audit, "v1")["residentOn"]!.GetValue<string>());
    }

    [Fact]
    public async Task VmPoolMigrate_OptionsNotAStruct_IsRefused_AndNothingMoves()
    {
        await using var lab = await Labs.StartAsync(TwoHosts);
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "m");
        var session = await LoginAsync(raw, m);
        var v1 = await RefAsync(raw, m, session, "VM", "v1");
        var b = await RefAsync(raw, m, session, "host", "b");

        var reply = await PostAsync(raw, m, Call("VM.pool_migrate", $"<value>{session}</value>", $"<value>{v1}</value>", $"<value>{b}</value>",
            "<value><array><data><value>live</value></data></array></value>"));

        Assert.Equal("FIELD_TYPE_ERROR", Failure(reply)[0]);
        Assert.Empty(Audit.Events(lab.AuditJson(), "migration.start"));
    }

    [Theory]
    [InlineData("<int>2</int>")]
    [InlineData("<i4>2</i4>")]
    [InlineData("<i8>2</i8>")]
    [InlineData("<string>2</string>")]
    [InlineData("2")]
    public async Task HostEvacuate_BatchSize_InEveryIntegerForm(string batch)
    {
        await using var lab = await Labs.StartAsync(TwoHosts);
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "m");
        var session = await LoginAsync(raw, m);
        var b = await RefAsync(raw, m, session, "host", "b");
        var network = Data(Success(await PostAsync(raw, m, Call("network.get_all", $"<value>{session}</value>")))).First().Value;

        Success(await PostAsync(raw, m, Call("host.evacuate", $"<value>{session}</value>", $"<value>{b}</value>", $"<value>{network}</value>", $"<value>{batch}</value>")));

        var audit = lab.AuditJson();
        Assert.Equal(2, Audit.Events(audit, "host.evacuate", "b").Single()["batch"]!.GetValue<int>());
        Assert.Equal("m", Audit.Vm(audit, "v2")["residentOn"]!.GetValue<string>());
    }

    [Fact]
    public async Task PoolSetters_BooleanAndInt64Arguments_AreRead()
    {
        await using var lab = await Labs.StartAsync(HaPool);
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "m");
        var session = await LoginAsync(raw, m);
        var pool = Data(Success(await PostAsync(raw, m, Call("pool.get_all", $"<value>{session}</value>")))).Single().Value;

        Success(await PostAsync(raw, m, Call("pool.set_ha_allow_overcommit", $"<value>{session}</value>", $"<value>{pool}</value>", "<value><boolean>1</boolean></value>")));
        Assert.True(lab.AuditJson()["pool"]!["haAllowOvercommit"]!.GetValue<bool>());
        Success(await PostAsync(raw, m, Call("pool.set_ha_allow_overcommit", $"<value>{session}</value>", $"<value>{pool}</value>", "<value><boolean>0</boolean></value>")));
        Assert.False(lab.AuditJson()["pool"]!["haAllowOvercommit"]!.GetValue<bool>());
        Success(await PostAsync(raw, m, Call("pool.set_ha_host_failures_to_tolerate", $"<value>{session}</value>", $"<value>{pool}</value>", "<value>3</value>")));
        Assert.Equal(3, lab.AuditJson()["pool"]!["haHostFailuresToTolerate"]!.GetValue<long>());
        Success(await PostAsync(raw, m, Call("pool.set_ha_host_failures_to_tolerate", $"<value>{session}</value>", $"<value>{pool}</value>", "<value><i8>1</i8></value>")));
        Assert.Equal(1, lab.AuditJson()["pool"]!["haHostFailuresToTolerate"]!.GetValue<long>());
    }

    [Fact]
    public async Task BareStrings_AreNotTrimmed()
    {
        await using var lab = await Labs.StartAsync(TwoHosts);
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "m");
        var session = await LoginAsync(raw, m);

        Assert.Single(Data(Success(await PostAsync(raw, m, Call("host.get_by_name_label", $"<value>{session}</value>", "<value>b</value>")))));
        Assert.Empty(Data(Success(await PostAsync(raw, m, Call("host.get_by_name_label", $"<value>{session}</value>", "<value> b </value>")))));
    }

    [Fact]
    public async Task Replies_AreXapisShapes()
    {
        await using var lab = await Labs.StartAsync(TwoHosts);
        using var raw = new RawXapi(lab);
        var m = Labs.Address(lab, "m");
        var session = await LoginAsync(raw, m);

        // system.listMethods: the array alone, no Status struct (api_server.ml).
        var methods = await PostAsync(raw, m, Call("system.listMethods"));
        Assert.Equal("array", Assert.Single(methods.Elements()).Name.LocalName);
        Assert.Contains("VM.pool_migrate", Data(methods).Select(v => v.Value));

        // Every field of every class: strings and int64 untyped, never <string> or an integer element.
        foreach (var cls in new[] { "pool", "host", "host_metrics", "VM", "VM_metrics", "VM_guest_metrics", "SR", "VDI", "PBD", "VBD", "task", "network", "session" })
        {
            var records = Success(await PostAsync(raw, m, Call(cls + ".get_all_records", $"<value>{session}</value>")));
            var typed = records.Descendants().Select(e => e.Name.LocalName).ToHashSet();
            Assert.Empty(typed.Intersect(["string", "int", "i4", "i8", "base64"]));
        }

        var metrics = Success(await PostAsync(raw, m, Call("host_metrics.get_all_records", $"<value>{session}</value>")));
        var record = metrics.Element("struct")!.Elements("member").First().Element("value")!;
        Assert.Equal("dateTime.iso8601", Member(record, "last_updated").Elements().Single().Name.LocalName);
        Assert.Equal("boolean", Member(record, "live").Elements().Single().Name.LocalName);
        Assert.Equal((65536L << 20).ToString(CultureInfo.InvariantCulture), Member(record, "memory_total").Value);

        // event.from: valid_ref_counts are Int32, <i4> (event_types.ml); the timeout goes as a <double>.
        var batch = Success(await PostAsync(raw, m, Call("event.from", $"<value>{session}</value>",
            "<value><array><data><value>host</value></data></array></value>", "<value></value>", "<value><double>0.5</double></value>")));
        Assert.Equal("<i4>2</i4>", Member(Member(batch, "valid_ref_counts"), "host").Elements().Single().ToString(SaveOptions.DisableFormatting));
        Assert.Equal(2, Data(Member(batch, "events")).Count);

        // A failure: the code and its parameters, untyped strings.
        var failure = await PostAsync(raw, m, Call("host.get_record", $"<value>{session}</value>", "<value>OpaqueRef:00000000-0000-0000-0000-000000000000</value>"));
        Assert.Equal(["HANDLE_INVALID", "host", "OpaqueRef:00000000-0000-0000-0000-000000000000"], Failure(failure));
        Assert.All(Data(Member(failure, "ErrorDescription")), v => Assert.False(v.HasElements));
    }

    [Theory]
    [InlineData("<methodCall><methodName>system.listMethods</methodName></methodCall>")]
    [InlineData("<methodCall><methodName>host.get_all</methodName><params><param><value><int>x</int></value></param></params></methodCall>")]
    [InlineData("<methodCall><methodName>host.get_all</methodName><params><param><value>OpaqueRef:s<string>x</string></value></param></params></methodCall>")]
    [InlineData("<methodCall><methodName>pool.enable_ha</methodName><params><param><value><struct><member><value>60</value></member></struct></value></param></params></methodCall>")]
    [InlineData("<methodCall><methodName>host.get_all</methodName><params><param><value><float>1</float></value></param></params></methodCall>")]
    public async Task Unparseable_IsHttp500WithAnHtmlPage(string body)
    {
        await using var lab = await Labs.StartAsync(TwoHosts);
        using var raw = new RawXapi(lab);

        var (status, contentType, page) = await raw.PostAsync(Labs.Address(lab, "m"), "/", body, "text/xml");

        Assert.Equal((HttpStatusCode.InternalServerError, "text/html"), (status, contentType));
        Assert.Contains("<html>", page, StringComparison.Ordinal);
    }

    private static string Call(string method, params string[] values) =>
        $"<?xml version=\"1.0\"?><methodCall><methodName>{method}</methodName><params>{string.Concat(values.Select(v => "<param>" + v + "</param>"))}</params></methodCall>";

    /// <summary>The value in the methodResponse's param.</summary>
    private static async Task<XElement> PostAsync(RawXapi raw, string address, string body)
    {
        var (status, contentType, text) = await raw.PostAsync(address, "/", body, "text/xml");
        Assert.Equal((HttpStatusCode.OK, "text/xml"), (status, contentType));
        var root = XDocument.Parse(text).Root!;
        Assert.Equal("methodResponse", root.Name.LocalName);
        return root.Element("params")!.Element("param")!.Element("value")!;
    }

    private static XElement Member(XElement value, string name) =>
        value.Element("struct")!.Elements("member").Single(e => e.Element("name")!.Value == name).Element("value")!;

    private static XElement Success(XElement reply)
    {
        var status = Member(reply, "Status").Value;
        Assert.True(status == "Success", "expected Success, got " + reply);
        return Member(reply, "Value");
    }

    private static List<string> Failure(XElement reply)
    {
        Assert.Equal("Failure", Member(reply, "Status").Value);
        return Data(Member(reply, "ErrorDescription")).Select(v => v.Value).ToList();
    }

    private static List<XElement> Data(XElement value) => value.Element("array")!.Element("data")!.Elements("value").ToList();

    private static async Task<string> LoginAsync(RawXapi raw, string address)
    {
        var reply = await PostAsync(raw, address, Call("session.login_with_password",
            $"<value>{SecurityElement.Escape(raw.User)}</value>", $"<value><string>{SecurityElement.Escape(raw.Password)}</string></value>"));
        return Success(reply).Value;
    }

    private static async Task<string> RefAsync(RawXapi raw, string address, string session, string cls, string name) =>
        Assert.Single(Data(Success(await PostAsync(raw, address, Call(cls + ".get_by_name_label", $"<value>{session}</value>", $"<value>{name}</value>"))))).Value;
}
