// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

interface IERC20 {
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

/// @notice Developers stake a token to activate their accounts; the owner may slash.
/// Every change of a stake emits exactly one event, so the stake is the sum of the events.
contract StakeVault {
    IERC20 public immutable token;
    address public immutable owner;

    uint256 public totalStaked;
    mapping(address => uint256) private stakes;

    event Staked(address indexed developer, uint256 amount);
    event Unstaked(address indexed developer, uint256 amount);
    event Slashed(address indexed developer, uint256 amount);

    constructor(address token_) {
        require(token_ != address(0), "StakeVault: zero token");
        token = IERC20(token_);
        owner = msg.sender;
    }

    function stake(uint256 amount) external {
        _credit(msg.sender, amount);
        _pull(amount);
    }

    function stakeFor(address developer, uint256 amount) external {
        _credit(developer, amount);
        _pull(amount);
    }

    /// @dev The caller pays the sum of `amounts` in one transfer.
    function stakeForMany(address[] calldata developers, uint256[] calldata amounts) external {
        require(developers.length == amounts.length, "StakeVault: length mismatch");
        require(developers.length > 0, "StakeVault: empty batch");
        uint256 sum;
        for (uint256 i = 0; i < developers.length; i++) {
            _credit(developers[i], amounts[i]);
            sum += amounts[i];
        }
        _pull(sum);
    }

    function unstake(uint256 amount) external {
        require(amount > 0, "StakeVault: zero amount");
        uint256 current = stakes[msg.sender];
        require(current >= amount, "StakeVault: insufficient stake");
        stakes[msg.sender] = current - amount;
        totalStaked -= amount;
        emit Unstaked(msg.sender, amount);
        require(token.transfer(msg.sender, amount), "StakeVault: transfer failed");
    }

    function slash(address developer, uint256 amount) external {
        require(msg.sender == owner, "StakeVault: not owner");
        require(amount > 0, "StakeVault: zero amount");
        uint256 current = stakes[developer];
        require(current >= amount, "StakeVault: insufficient stake");
        stakes[developer] = current - amount;
        totalStaked -= amount;
        emit Slashed(developer, amount);
        require(token.transfer(owner, amount), "StakeVault: transfer failed");
    }

    function stakeOf(address developer) external view returns (uint256) {
        return stakes[developer];
    }

    function _credit(address developer, uint256 amount) private {
        require(amount > 0, "StakeVault: zero amount");
        require(developer != address(0), "StakeVault: zero developer");
        stakes[developer] += amount;
        totalStaked += amount;
        emit Staked(developer, amount);
    }

    function _pull(uint256 amount) private {
        require(token.transferFrom(msg.sender, address(this), amount), "StakeVault: transfer failed");
    }
}
