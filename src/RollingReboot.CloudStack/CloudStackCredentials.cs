using RollingReboot.Core.Ports;

namespace RollingReboot.CloudStack;

/// <summary>CloudStack settings that are missing, contradictory or unsafe (the user must fix them).</summary>
public sealed class CloudStackConfigurationException : CloudStackException
{
    public CloudStackConfigurationException(string message) : base(message)
    {
    }

    public CloudStackConfigurationException(string message, Exception inner) : base(message, inner)
    {
    }

    public CloudStackConfigurationException()
    {
    }
}

/// <summary>Where and as whom to call CloudStack. <see cref="ToString"/> never shows the secret key.</summary>
public sealed class CloudStackCredentials
{
    public const string UrlVariable = "ROLLREBOOT_CLOUDSTACK_URL";
    public const string ApiKeyVariable = "ROLLREBOOT_CLOUDSTACK_API_KEY";
    public const string SecretKeyVariable = "ROLLREBOOT_CLOUDSTACK_SECRET_KEY";
    public const string SecretKeyFileVariable = "ROLLREBOOT_CLOUDSTACK_SECRET_KEY_FILE";

    /// <summary>Names a CloudMonkey profile to read instead of the variables above.</summary>
    public const string ProfileVariable = "ROLLREBOOT_CLOUDSTACK_PROFILE";

    /// <summary>The page size of list calls (default: the server's own default.page.size), whatever the keys' source.</summary>
    public const string PageSizeVariable = "ROLLREBOOT_CLOUDSTACK_PAGE_SIZE";

    public CloudStackCredentials(Uri endpoint, string apiKey, string secretKey, string source)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentException.ThrowIfNullOrWhiteSpace(apiKey);
        ArgumentException.ThrowIfNullOrWhiteSpace(secretKey);
        Endpoint = endpoint;
        ApiKey = apiKey;
        SecretKey = secretKey;
        Source = source ?? "";
    }

    public Uri Endpoint { get; }

    public string ApiKey { get; }

    public string SecretKey { get; }

    /// <summary>Where these came from, for messages (e.g. "environment", "CloudMonkey profile 'prod' in ~/.cmk/config").</summary>
    public string Source { get; }

    /// <summary>CloudMonkey's <c>verifycert</c>; false asks to accept any TLS certificate.</summary>
    public bool VerifyCertificate { get; init; } = true;

    /// <summary>CloudMonkey's <c>timeout</c>, when set.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary><see cref="PageSizeVariable"/>, when set: list calls ask pages of this size.</summary>
    public int? PageSize { get; init; }

    /// <summary>
    /// Finds the CloudStack settings: the <c>ROLLREBOOT_CLOUDSTACK_*</c> environment variables when any is set;
    /// otherwise a CloudMonkey profile when one is asked for (<paramref name="cloudMonkeyProfile"/>, the
    /// <see cref="ProfileVariable"/> variable, or an explicit <paramref name="cloudMonkeyConfigPath"/>, whose
    /// <c>[core] profile</c> is the default); otherwise null: no CloudStack is configured.
    /// </summary>
    /// <exception cref="CloudStackConfigurationException">Settings are incomplete, contradictory or unsafe.</exception>
    public static CloudStackCredentials? Resolve(
        Func<string, string?>? getEnvironmentVariable = null,
        string? cloudMonkeyProfile = null,
        string? cloudMonkeyConfigPath = null)
    {
        getEnvironmentVariable ??= Environment.GetEnvironmentVariable;
        string? Get(string name) => getEnvironmentVariable(name) is { Length: > 0 } v ? v : null;

        var url = Get(UrlVariable);
        var apiKey = Get(ApiKeyVariable);
        var secretKey = Get(SecretKeyVariable);
        var secretKeyFile = Get(SecretKeyFileVariable);
        var pageSize = ParsePageSize(Get(PageSizeVariable));
        if (url is not null || apiKey is not null || secretKey is not null || secretKeyFile is not null)
        {
            return FromEnvironment(url, apiKey, secretKey, secretKeyFile).WithPageSize(pageSize);
        }

        var profile = cloudMonkeyProfile ?? Get(ProfileVariable);
        if (profile is null && cloudMonkeyConfigPath is null)
        {
            return null;
        }

        var path = cloudMonkeyConfigPath ?? CloudMonkeyConfig.DefaultPath;
        var config = CloudMonkeyConfig.Load(path);
        return FromCloudMonkeyProfile(config.GetProfile(profile), path).WithPageSize(pageSize);
    }

    private CloudStackCredentials WithPageSize(int? pageSize) => pageSize is null ? this : new CloudStackCredentials(Endpoint, ApiKey, SecretKey, Source)
    {
        VerifyCertificate = VerifyCertificate,
        Timeout = Timeout,
        PageSize = pageSize,
    };

    private static int? ParsePageSize(string? text) =>
        text is null ? null
        : int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var size) && size > 0 ? size
        : throw new CloudStackConfigurationException($"{PageSizeVariable}={text} is not a page size (a whole number above 0, at most the server's default.page.size).");

    /// <summary>Credentials from a CloudMonkey profile; fails clearly when url, apikey or secretkey is missing.</summary>
    public static CloudStackCredentials FromCloudMonkeyProfile(CloudMonkeyProfile profile, string configPath)
    {
        ArgumentNullException.ThrowIfNull(profile);
        var where = $"CloudMonkey profile '{profile.Name}' in {configPath}";
        var missing = new List<string>();
        if (string.IsNullOrWhiteSpace(profile.Url))
        {
            missing.Add("url");
        }

        if (string.IsNullOrWhiteSpace(profile.ApiKey))
        {
            missing.Add("apikey");
        }

        if (string.IsNullOrWhiteSpace(profile.SecretKey))
        {
            missing.Add("secretkey");
        }

        if (missing.Count > 0)
        {
            throw new CloudStackConfigurationException(
                $"The {where} has no {string.Join(", ", missing)}. rollreboot signs requests with an API key pair " +
                "(username/password logins are not supported): generate keys for an admin user and set them with " +
                $"'cmk set apikey ...' and 'cmk set secretkey ...', or use {UrlVariable}, {ApiKeyVariable} and {SecretKeyVariable}.");
        }

        var endpoint = ParseUrl(profile.Url!, $"the url of the {where}");
        return new CloudStackCredentials(endpoint, profile.ApiKey!, profile.SecretKey!, where)
        {
            VerifyCertificate = profile.VerifyCert ?? true,
            Timeout = profile.TimeoutSeconds is > 0 and var seconds ? TimeSpan.FromSeconds(seconds) : null,
        };
    }

    /// <summary>
    /// Reads a secret key file, refusing one that group or others may access (as ssh refuses such a private key).
    /// </summary>
    public static string ReadSecretKeyFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            throw new CloudStackConfigurationException($"The CloudStack secret key file '{path}' ({SecretKeyFileVariable}) does not exist.");
        }

        if (!OperatingSystem.IsWindows())
        {
            var mode = File.GetUnixFileMode(path);
            const UnixFileMode groupOrOthers = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute |
                UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
            if ((mode & groupOrOthers) != 0)
            {
                throw new CloudStackConfigurationException(
                    $"Permissions {Convert.ToString((int)mode, 8).PadLeft(4, '0')} for the CloudStack secret key file '{path}' are too open: " +
                    $"it must not be accessible by group or others. Run: chmod 600 '{path}'");
            }
        }

        string text;
        try
        {
            text = File.ReadAllText(path).Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CloudStackConfigurationException($"Cannot read the CloudStack secret key file '{path}': {ex.Message}", ex);
        }

        if (text.Length == 0)
        {
            throw new CloudStackConfigurationException($"The CloudStack secret key file '{path}' is empty.");
        }

        return text;
    }

    public override string ToString() =>
        $"CloudStack {DisplayUrl(Endpoint)} as apikey {Abbreviate(ApiKey)} (secret key hidden) from {Source}";

    /// <summary>The first characters of a key, enough to tell keys apart in messages.</summary>
    internal static string Abbreviate(string? key) =>
        string.IsNullOrEmpty(key) ? "(none)" : key.Length <= 8 ? "…" : string.Concat(key.AsSpan(0, 6), "…");

    /// <summary>The URL without user info, query or fragment.</summary>
    internal static string DisplayUrl(Uri? uri) =>
        uri is null ? "(no URL)" :
        uri.IsAbsoluteUri ? uri.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped) : "(relative URL)";

    private static CloudStackCredentials FromEnvironment(string? url, string? apiKey, string? secretKey, string? secretKeyFile)
    {
        var missing = new List<string>();
        if (url is null)
        {
            missing.Add(UrlVariable);
        }

        if (apiKey is null)
        {
            missing.Add(ApiKeyVariable);
        }

        if (secretKey is null && secretKeyFile is null)
        {
            missing.Add($"{SecretKeyVariable} (or {SecretKeyFileVariable})");
        }

        if (missing.Count > 0)
        {
            throw new CloudStackConfigurationException(
                $"CloudStack is partly configured: {string.Join(", ", missing)} {(missing.Count == 1 ? "is" : "are")} not set.");
        }

        if (secretKey is not null && secretKeyFile is not null)
        {
            throw new CloudStackConfigurationException(
                $"Both {SecretKeyVariable} and {SecretKeyFileVariable} are set; set only one.");
        }

        var secret = secretKey ?? ReadSecretKeyFile(secretKeyFile!);
        return new CloudStackCredentials(ParseUrl(url!, UrlVariable), apiKey!, secret, "environment");
    }

    private static Uri ParseUrl(string url, string what)
    {
        if (!Uri.TryCreate(url.Trim(), UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new CloudStackConfigurationException(
                $"{what} is not an http(s) URL such as http://cloudstack:8080/client/api.");
        }

        return uri;
    }
}
