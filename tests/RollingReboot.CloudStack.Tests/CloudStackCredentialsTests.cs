namespace RollingReboot.CloudStack.Tests;

public sealed class CloudStackCredentialsTests : IDisposable
{
    private const string Secret = "VDaACYb0LV9eNjTetIOElcVQkvJck_J_QljX_FcHRj87";

    private const string CmkConfig = """
        # CloudMonkey config
        [core]
        prompt = 🐵
        asyncblock = true
          Profile =  prod
        output=json

        [localcloud]
        url = http://localhost:8080/client/api
        username = admin
        password = password
        apikey =
        secretkey =

        ; the production cloud
        [ Prod ]
        URL = "https://cloud.example.com:8443/client/api"
        ApiKey   = prod-api-key-123
        secretKey= VDaACYb0LV9eNjTetIOElcVQkvJck_J_QljX_FcHRj87
        verifyCert = false
        timeout = 1800
        """;

    private readonly string _directory = Directory.CreateTempSubdirectory("rollreboot-cs-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Parse_ToleratesCommentsSpacesQuotesAndCase()
    {
        var config = CloudMonkeyConfig.Parse(CmkConfig);

        Assert.Equal("prod", config.DefaultProfile);
        Assert.Equal(["localcloud", "Prod"], config.Profiles.Values.Select(p => p.Name).Order(StringComparer.OrdinalIgnoreCase));
        var prod = config.GetProfile();
        Assert.Equal("Prod", prod.Name);
        Assert.Equal("https://cloud.example.com:8443/client/api", prod.Url);
        Assert.Equal("prod-api-key-123", prod.ApiKey);
        Assert.Equal(Secret, prod.SecretKey);
        Assert.False(prod.VerifyCert);
        Assert.Equal(1800, prod.TimeoutSeconds);
    }

    [Fact]
    public void Parse_WindowsLineEndings_AreTolerated()
    {
        var config = CloudMonkeyConfig.Parse(CmkConfig.Replace("\n", "\r\n", StringComparison.Ordinal));

        Assert.Equal(Secret, config.GetProfile("prod").SecretKey);
    }

    [Fact]
    public void GetProfile_ByName_PicksThatProfile() =>
        Assert.Equal("http://localhost:8080/client/api", CloudMonkeyConfig.Parse(CmkConfig).GetProfile("localcloud").Url);

    [Fact]
    public void GetProfile_Unknown_ListsTheProfiles()
    {
        var ex = Assert.Throws<CloudStackConfigurationException>(() => CloudMonkeyConfig.Parse(CmkConfig).GetProfile("staging"));

        Assert.Contains("no profile 'staging'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("localcloud, Prod", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GetProfile_NoDefaultAndSeveralProfiles_AsksToChoose()
    {
        var config = CloudMonkeyConfig.Parse("[a]\nurl=http://a\n[b]\nurl=http://b\n");

        var ex = Assert.Throws<CloudStackConfigurationException>(() => config.GetProfile());

        Assert.Contains("choose one of: a, b", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GetProfile_NoDefaultAndOneProfile_IsThatProfile() =>
        Assert.Equal("only", CloudMonkeyConfig.Parse("[only]\nurl=http://a\n").GetProfile().Name);

    [Fact]
    public void FromProfile_WithoutKeys_SaysWhatIsMissingAndHowToFixIt()
    {
        var profile = CloudMonkeyConfig.Parse(CmkConfig).GetProfile("localcloud");

        var ex = Assert.Throws<CloudStackConfigurationException>(() => CloudStackCredentials.FromCloudMonkeyProfile(profile, "~/.cmk/config"));

        Assert.Contains("profile 'localcloud' in ~/.cmk/config has no apikey, secretkey", ex.Message, StringComparison.Ordinal);
        Assert.Contains("cmk set apikey", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Resolve_ProfileFromConfigFile_CarriesVerifyCertAndTimeout()
    {
        var path = Path.Combine(_directory, "config");
        File.WriteAllText(path, CmkConfig);

        var credentials = CloudStackCredentials.Resolve(_ => null, cloudMonkeyConfigPath: path)!;

        Assert.Equal(new Uri("https://cloud.example.com:8443/client/api"), credentials.Endpoint);
        Assert.Equal("prod-api-key-123", credentials.ApiKey);
        Assert.Equal(Secret, credentials.SecretKey);
        Assert.False(credentials.VerifyCertificate);
        Assert.Equal(TimeSpan.FromMinutes(30), credentials.Timeout);
        Assert.Contains("CloudMonkey profile 'Prod'", credentials.Source, StringComparison.Ordinal);
    }

    [Fact]
    public void Resolve_ProfileVariable_SelectsTheProfile()
    {
        var path = Path.Combine(_directory, "config");
        File.WriteAllText(path, CmkConfig);
        var environment = new Dictionary<string, string> { [CloudStackCredentials.ProfileVariable] = "localcloud" };

        var ex = Assert.Throws<CloudStackConfigurationException>(
            () => CloudStackCredentials.Resolve(environment.GetValueOrDefault, cloudMonkeyConfigPath: path));

        Assert.Contains("'localcloud'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Resolve_NothingConfigured_IsNull() =>
        Assert.Null(CloudStackCredentials.Resolve(_ => null));

    [Fact]
    public void Resolve_Environment_TakesPrecedence()
    {
        var environment = new Dictionary<string, string>
        {
            [CloudStackCredentials.UrlVariable] = "http://cs:8080/client/api",
            [CloudStackCredentials.ApiKeyVariable] = "key",
            [CloudStackCredentials.SecretKeyVariable] = Secret,
        };

        var credentials = CloudStackCredentials.Resolve(environment.GetValueOrDefault, cloudMonkeyProfile: "prod")!;

        Assert.Equal("environment", credentials.Source);
        Assert.Equal(Secret, credentials.SecretKey);
        Assert.DoesNotContain(Secret, credentials.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Resolve_PartialEnvironment_NamesTheMissingVariables()
    {
        var environment = new Dictionary<string, string> { [CloudStackCredentials.UrlVariable] = "http://cs:8080/client/api" };

        var ex = Assert.Throws<CloudStackConfigurationException>(() => CloudStackCredentials.Resolve(environment.GetValueOrDefault));

        Assert.Contains(CloudStackCredentials.ApiKeyVariable, ex.Message, StringComparison.Ordinal);
        Assert.Contains(CloudStackCredentials.SecretKeyFileVariable, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Resolve_BadUrl_IsRefused()
    {
        var environment = new Dictionary<string, string>
        {
            [CloudStackCredentials.UrlVariable] = "cs:8080",
            [CloudStackCredentials.ApiKeyVariable] = "key",
            [CloudStackCredentials.SecretKeyVariable] = Secret,
        };

        var ex = Assert.Throws<CloudStackConfigurationException>(() => CloudStackCredentials.Resolve(environment.GetValueOrDefault));

        Assert.Contains(CloudStackCredentials.UrlVariable, ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Resolve_SecretKeyFile_PrivateIsRead()
    {
        var path = WriteSecretFile(UnixFileMode.UserRead | UnixFileMode.UserWrite);

        var credentials = CloudStackCredentials.Resolve(FileEnvironment(path).GetValueOrDefault)!;

        Assert.Equal(Secret, credentials.SecretKey);
    }

    [Theory]
    [InlineData(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, "0644")]
    [InlineData(UnixFileMode.UserRead | UnixFileMode.GroupRead, "0440")]
    [InlineData(UnixFileMode.UserRead | UnixFileMode.OtherWrite, "0402")]
    public void Resolve_SecretKeyFile_ReadableByOthers_IsRefusedLikeSsh(UnixFileMode mode, string octal)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var path = WriteSecretFile(mode);

        var ex = Assert.Throws<CloudStackConfigurationException>(() => CloudStackCredentials.Resolve(FileEnvironment(path).GetValueOrDefault));

        Assert.Contains($"Permissions {octal}", ex.Message, StringComparison.Ordinal);
        Assert.Contains("too open", ex.Message, StringComparison.Ordinal);
        Assert.Contains("chmod 600", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Resolve_SecretKeyAndSecretKeyFile_IsContradictory()
    {
        var environment = FileEnvironment(WriteSecretFile(UnixFileMode.UserRead));
        environment[CloudStackCredentials.SecretKeyVariable] = Secret;

        var ex = Assert.Throws<CloudStackConfigurationException>(() => CloudStackCredentials.Resolve(environment.GetValueOrDefault));

        Assert.Contains("set only one", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ToStrings_NeverShowTheSecret()
    {
        var profile = CloudMonkeyConfig.Parse(CmkConfig).GetProfile("prod");
        var credentials = CloudStackCredentials.FromCloudMonkeyProfile(profile, "config");
        var options = CloudStackClientOptions.FromCredentials(credentials);

        Assert.All(new object[] { profile, credentials, options }, o => Assert.DoesNotContain(Secret, o.ToString(), StringComparison.Ordinal));
        Assert.DoesNotContain("password", CloudMonkeyConfig.Parse(CmkConfig).GetProfile("localcloud").ToString(), StringComparison.Ordinal);
    }

    private string WriteSecretFile(UnixFileMode mode)
    {
        var path = Path.Combine(_directory, "secret");
        File.WriteAllText(path, Secret + "\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, mode);
        }

        return path;
    }

    private static Dictionary<string, string> FileEnvironment(string path) => new()
    {
        [CloudStackCredentials.UrlVariable] = "http://cs:8080/client/api",
        [CloudStackCredentials.ApiKeyVariable] = "key",
        [CloudStackCredentials.SecretKeyFileVariable] = path,
    };
}
